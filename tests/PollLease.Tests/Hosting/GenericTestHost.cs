using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using PollLease.Coordination;
using PollLease.Hosting;
using PollLease.Polling;

namespace PollLease.Tests.Hosting;

/// <summary>
/// The hosting layer as the Azure Functions worker runs it: a plain .NET Generic Host with <c>AddPollLease</c> bound
/// from configuration (the same keys as the app settings), scaled-down timings and the <c>record</c> handler.
/// </summary>
internal static class GenericTestHost
{
    public static Dictionary<string, string?> Settings(string redis, string prefix, string instanceId) => new()
    {
        ["PollLease:Redis"] = redis,
        ["PollLease:KeyPrefix"] = prefix,
        ["PollLease:InstanceId"] = instanceId,
        // Loaded-machine margins, as in LeaseTestHost: a cycle may take a second or more on a busy 2-core machine.
        ["PollLease:LeaseTtl"] = "00:00:03",
        ["PollLease:RenewInterval"] = "00:00:00.500",
        ["PollLease:RetryInterval"] = "00:00:00.100",
        ["PollLease:HeartbeatTtl"] = "00:00:03",
        ["PollLease:HeartbeatInterval"] = "00:00:00.500",
        ["PollLease:SafetyMargin"] = "00:00:00.500",
        ["PollLease:OperationTimeout"] = "00:00:02",
        ["PollLease:ShutdownTimeout"] = "00:00:03",
        ["PollLease:Polling:Tick"] = "00:00:00.050",
        ["PollLease:Polling:Jitter"] = "0",
    };

    public static IHost Build(Dictionary<string, string?> settings, Action<IServiceCollection>? configure = null, IPollHandler? handler = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        // The Azure Functions host gives a stopping worker about 5 s.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        configure?.Invoke(builder.Services);
        builder.Services.AddPollLease(builder.Configuration);
        builder.Services.AddPollHandler<RecordPollHandler>();
        if (handler is not null)
        {
            builder.Services.RemoveAll<IPollHandler>();
            builder.Services.AddSingleton(handler);
        }
        return builder.Build();
    }

    public static async Task<IHost> StartAsync(Dictionary<string, string?> settings, Action<IServiceCollection>? configure = null)
    {
        var host = Build(settings, configure);
        await host.StartAsync();
        await host.WaitUntilRunningAsync();
        return host;
    }

    /// <summary>
    /// The host's start returns before the instance has connected and registered (that runs in the background); this
    /// waits for both the instance and its janitor.
    /// </summary>
    public static async Task WaitUntilRunningAsync(this IHost host)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.NotNull(await host.Services.GetRequiredService<PollLeaseHostedService>().WhenRunningAsync(deadline.Token));
        await host.Services.GetRequiredService<FleetJanitorHostedService>().WhenStartedAsync(deadline.Token);
    }

    public static LeaseManager Leases(this IHost host) => host.Services.GetRequiredService<LeaseManager>();

    public static PollLeaseTriggers Triggers(this IHost host) => host.Services.GetRequiredService<PollLeaseTriggers>();
}
