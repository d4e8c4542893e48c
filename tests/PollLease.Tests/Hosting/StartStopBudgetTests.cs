using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PollLease.ChaosTests.Harness;
using PollLease.Coordination;
using PollLease.Hosting;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace PollLease.Tests.Hosting;

/// <summary>
/// What the Azure Functions worker needs from the hosting layer at its edges: a start that never waits on Redis (the
/// host builds and starts every hosted service before the worker answers the Functions host), and a stop that fits the
/// 5 s the Functions host gives a worker, however Redis behaves. Timings are compared or bounded generously, never
/// asserted tightly.
/// </summary>
public abstract class StartStopBudgetTests(RedisFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>GenericTestHost's ShutdownTimeout: the whole stop must fit in it.</summary>
    private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(3);

    /// <summary>Slack for a loaded 2-core machine on top of a bound that the code enforces itself.</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(1.5);

    [Fact]
    public async Task Start_takes_about_as_long_with_Redis_blackholed_as_with_it_up_and_the_instance_joins_once_it_answers()
    {
        var prefix = RedisFixture.NewPrefix();
        await SeedAsync(prefix, 2);

        TimeSpan up;
        using (var host = GenericTestHost.Build(GenericTestHost.Settings(fixture.ConnectionString, prefix, "start-up")))
        {
            var stopwatch = Stopwatch.StartNew();
            await host.StartAsync();
            up = stopwatch.Elapsed;
            await host.WaitUntilRunningAsync();
            await host.StopAsync();
        }

        await using var proxy = new TcpProxy(RedisPort());
        proxy.Blackhole();
        using var down = GenericTestHost.Build(GenericTestHost.Settings(proxy.ConnectionString, prefix, "start-down"));
        var sw = Stopwatch.StartNew();
        await down.StartAsync();
        var blackholed = sw.Elapsed;
        output.WriteLine($"host start: Redis up {up.TotalMilliseconds:0} ms, Redis blackholed {blackholed.TotalMilliseconds:0} ms");
        // The connect timeout alone is 2 s behind this proxy: a start that waited for it would show.
        Assert.True(blackholed < up + TimeSpan.FromSeconds(1.5), $"start took {blackholed} with Redis blackholed against {up} with it up");
        Assert.Null(down.Services.GetRequiredService<PollLeaseHostedService>().Leases);

        proxy.Heal();
        await Eventually.TrueAsync(() => down.Leases().OwnedSessions().Count == 2, Wait, "the instance takes both sessions once Redis answers");
        await down.StopAsync();
    }

    [Fact]
    public async Task A_token_that_cannot_be_had_is_logged_and_retried_with_backoff_while_the_host_runs()
    {
        var prefix = RedisFixture.NewPrefix();
        await SeedAsync(prefix, 1);
        var attempts = 0;
        using var host = GenericTestHost.Build(GenericTestHost.Settings(fixture.ConnectionString, prefix, "token-late"), services =>
        {
            services.AddLogging(b => b.SetMinimumLevel(LogLevel.Debug).AddFakeLogging());
            // What Microsoft.Azure.StackExchangeRedis does when no managed identity token can be acquired: it throws.
            services.Configure<PollLeaseRedisOptions>(o => o.ConfigureConnection.Add(_ =>
                Interlocked.Increment(ref attempts) <= 2
                    ? throw new InvalidOperationException("ManagedIdentityCredential authentication unavailable")
                    : Task.CompletedTask));
        });
        var logs = host.Services.GetFakeLogCollector();

        await host.StartAsync();
        Assert.Null(host.Services.GetRequiredService<PollLeaseHostedService>().Leases);

        await host.WaitUntilRunningAsync();
        await Eventually.TrueAsync(() => host.Leases().OwnedSessions().Count == 1, Wait, "the instance runs once the token comes");
        var failures = logs.GetSnapshot().Where(r => r.Id.Id == 3002).ToList();
        Assert.Equal(2, failures.Count);
        Assert.All(failures, r => Assert.Equal(LogLevel.Warning, r.Level));
        Assert.All(failures, r => Assert.Contains("authentication unavailable", r.Exception?.Message, StringComparison.Ordinal));
        Assert.Equal(3, attempts);
        await host.StopAsync();
    }

    [Fact]
    public async Task Stop_with_Redis_blackholed_ends_within_ShutdownTimeout_and_counts_the_leases_left_to_expire()
    {
        var prefix = RedisFixture.NewPrefix();
        await SeedAsync(prefix, 3);
        await using var proxy = new TcpProxy(RedisPort());
        using var host = GenericTestHost.Build(GenericTestHost.Settings(proxy.ConnectionString, prefix, "stop-dark"), services =>
            services.AddLogging(b => b.SetMinimumLevel(LogLevel.Information).AddFakeLogging()));
        var logs = host.Services.GetFakeLogCollector();
        await host.StartAsync();
        await host.WaitUntilRunningAsync();
        var janitor = host.Services.GetRequiredService<FleetJanitorHostedService>().Janitor!;
        await Eventually.TrueAsync(() => host.Leases().OwnedSessions().Count == 3 && janitor.IsJanitor, Wait, "three leases held and the janitor elected");

        // Redis goes silent: every step of the stop (poll drain, cycle gate, unsubscribe, release, janitor) now waits
        // on a reply that never comes.
        proxy.Blackhole();
        using var hostPatience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stopwatch = Stopwatch.StartNew();
        await host.StopAsync(hostPatience.Token);
        var elapsed = stopwatch.Elapsed;
        output.WriteLine($"stop with Redis blackholed: {elapsed.TotalMilliseconds:0} ms (ShutdownTimeout {ShutdownTimeout.TotalSeconds} s)");

        Assert.True(elapsed < ShutdownTimeout + Slack, $"stop took {elapsed}, beyond ShutdownTimeout {ShutdownTimeout}");
        Assert.Equal(3, host.Services.GetRequiredService<PollLeaseHostedService>().LeftToExpire);
        Assert.Equal(3, host.Leases().LastStop?.LeftToExpire);
        Assert.Empty(host.Leases().OwnedSessions());
        Assert.Contains(logs.GetSnapshot(), r => r.Id.Id == 3005 && r.Message.Contains("leftToExpire=3", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_handler_that_ignores_cancellation_keeps_its_leases_until_they_expire_so_nobody_polls_alongside_it()
    {
        var prefix = RedisFixture.NewPrefix();
        await SeedAsync(prefix, 2);
        var stuck = new StuckHandler();
        using var stuckHost = GenericTestHost.Build(GenericTestHost.Settings(fixture.ConnectionString, prefix, "stop-stuck"), handler: stuck);
        await stuckHost.StartAsync();
        await stuckHost.WaitUntilRunningAsync();
        await Eventually.TrueAsync(() => stuck.Entered >= 2, Wait, "both sessions' polls are inside the handler");

        var stopwatch = Stopwatch.StartNew();
        await stuckHost.StopAsync();
        var elapsed = stopwatch.Elapsed;
        output.WriteLine($"stop with a handler ignoring cancellation: {elapsed.TotalMilliseconds:0} ms");

        // The drain waits half the budget, then the stop ends without releasing: the polls are still running.
        Assert.True(elapsed < ShutdownTimeout + Slack, $"stop took {elapsed}, beyond ShutdownTimeout {ShutdownTimeout}");
        Assert.Equal(2, stuckHost.Leases().LastStop?.LeftToExpire);
        var db = fixture.Redis.GetDatabase();
        Assert.True(await db.KeyExistsAsync($"{{{prefix}}}:lease:s0"), "a lease whose poll still runs must not be released");
        Assert.True(await db.KeyExistsAsync($"{{{prefix}}}:lease:s1"), "a lease whose poll still runs must not be released");
        stuck.Release();
        // Then they lapse with the stopped instance's heartbeat and another instance takes them.
        using var next = GenericTestHost.Build(GenericTestHost.Settings(fixture.ConnectionString, prefix, "stop-next"));
        await next.StartAsync();
        await next.WaitUntilRunningAsync();
        await Eventually.TrueAsync(() => next.Leases().OwnedSessions().Count == 2, Wait, "the kept leases lapse with the stopped heartbeat and are taken");
        await next.StopAsync();
    }

    [Fact]
    public async Task A_stop_while_Redis_answers_releases_every_lease_and_leaves_none_to_expire()
    {
        var prefix = RedisFixture.NewPrefix();
        await SeedAsync(prefix, 2);
        using var host = GenericTestHost.Build(GenericTestHost.Settings(fixture.ConnectionString, prefix, "stop-clean"));
        await host.StartAsync();
        await host.WaitUntilRunningAsync();
        await Eventually.TrueAsync(() => host.Leases().OwnedSessions().Count == 2, Wait, "both sessions owned");

        await host.StopAsync();

        Assert.Equal(0, host.Services.GetRequiredService<PollLeaseHostedService>().LeftToExpire);
        var db = fixture.Redis.GetDatabase();
        Assert.False(await db.KeyExistsAsync($"{{{prefix}}}:lease:s0"));
        Assert.False(await db.KeyExistsAsync($"{{{prefix}}}:lease:s1"));
    }

    [Fact]
    public async Task An_instance_that_cannot_be_built_says_why_and_stops_the_host()
    {
        var prefix = RedisFixture.NewPrefix();
        // Not an outage to wait out: a service the instance needs throws when it is built, after the connection exists.
        using var host = GenericTestHost.Build(GenericTestHost.Settings(fixture.ConnectionString, prefix, "start-broken"), services =>
        {
            services.AddLogging(b => b.SetMinimumLevel(LogLevel.Information).AddFakeLogging());
            services.AddSingleton<LeaseManager>(_ => throw new InvalidOperationException("lease manager cannot be built"));
        });
        var logs = host.Services.GetFakeLogCollector();
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var told = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => stopping.TrySetResult());
        await host.StartAsync();

        // The host is told to stop, as for any failed background service, rather than running on without polling.
        await stopping.Task.WaitAsync(Wait);
        Assert.Null(await host.Services.GetRequiredService<PollLeaseHostedService>().Running);
        Assert.Contains(logs.GetSnapshot(), r => r.Id.Id == 3007 && r.Exception?.Message == "lease manager cannot be built");
        await host.StopAsync();
    }

    private int RedisPort() => ConfigurationOptions.Parse(fixture.ConnectionString).EndPoints.Single() switch
    {
        IPEndPoint ip => ip.Port,
        DnsEndPoint dns => dns.Port,
        var other => throw new InvalidOperationException($"unexpected endpoint {other}"),
    };

    private async Task SeedAsync(string prefix, int count)
    {
        var catalog = new SessionCatalog(fixture.Redis, prefix);
        for (var i = 0; i < count; i++)
        {
            await catalog.AddAsync($"s{i}", "record", TimeSpan.FromSeconds(4));
        }
    }

    /// <summary>A handler that never returns until released and ignores its cancellation token.</summary>
    private sealed class StuckHandler : IPollHandler
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _entered;

        public int Entered => Volatile.Read(ref _entered);

        public void Release() => _release.TrySetResult();

        public async Task<PollOutcome> PollAsync(PollContext context, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _entered);
            await _release.Task;
            return PollOutcome.Unchanged();
        }
    }
}

public sealed class StartStopBudgetTests_RedisServer(RedisServerFixture f, ITestOutputHelper o) : StartStopBudgetTests(f, o), IClassFixture<RedisServerFixture>;

public sealed class StartStopBudgetTests_Garnet(GarnetFixture f, ITestOutputHelper o) : StartStopBudgetTests(f, o), IClassFixture<GarnetFixture>;
