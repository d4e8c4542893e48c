using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PollLease.Assignment;
using PollLease.Coordination;
using PollLease.Election;
using PollLease.Fleet;
using PollLease.Messages;
using PollLease.Polling;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.Hosting;

/// <summary>Registers PollLease in a .NET Generic Host (pollctl, the Azure Functions worker, your own service).</summary>
public static class PollLeaseServiceCollectionExtensions
{
    /// <summary>
    /// Adds one PollLease instance: options bound from the <c>PollLease</c> section and validated at start-up,
    /// the Redis connection (unless an <see cref="IConnectionMultiplexer"/> is already registered), the session
    /// catalog, the lease manager and the hosted service that runs heartbeat, lease and poll loops. Register the
    /// poll handler with <see cref="AddPollHandler{THandler}"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">Configuration holding the <c>PollLease</c> section.</param>
    public static IServiceCollection AddPollLease(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddOptions<PollLeaseOptions>().Bind(configuration.GetSection(PollLeaseOptions.SectionName)).ValidateOnStart();
        services.PostConfigure<PollLeaseOptions>(o =>
        {
            // Resolve the generated id once, so the Redis ClientName, logs and leases all use the same one.
            if (string.IsNullOrEmpty(o.InstanceId))
            {
                o.InstanceId = InstanceIdentity.Generate(Environment.MachineName, TimeProvider.System);
            }
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PollLeaseOptions>, PollLeaseOptionsValidator>());
        services.AddOptions<PollingOptions>().Bind(configuration.GetSection(PollingOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PollingOptions>, PollingOptionsValidator>());
        services.AddOptions<PollLeaseRedisOptions>();
        services.TryAddSingleton(TimeProvider.System);

        services.TryAddSingleton<IConnectionMultiplexer>(sp => RedisConnectionFactory.ConnectAsync(
                sp.GetRequiredService<IOptions<PollLeaseOptions>>().Value,
                sp.GetRequiredService<IOptions<PollLeaseRedisOptions>>().Value,
                sp.GetRequiredService<ILoggerFactory>().CreateLogger("PollLease.Redis"))
            .GetAwaiter().GetResult());

        services.AddOptions<HttpPollOptions>().Bind(configuration.GetSection(HttpPollOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HttpPollOptions>, HttpPollOptionsValidator>());
        services.AddOptions<MessageLogOptions>().Bind(configuration.GetSection(MessageLogOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MessageLogOptions>, MessageLogOptionsValidator>());
        services.TryAddSingleton(sp => new MessageLog(
            sp.GetRequiredService<IConnectionMultiplexer>(),
            sp.GetRequiredService<IOptions<PollLeaseOptions>>().Value.KeyPrefix,
            sp.GetRequiredService<IOptions<MessageLogOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>()));
        services.TryAddSingleton(sp => new SessionCatalog(
            sp.GetRequiredService<IConnectionMultiplexer>(),
            sp.GetRequiredService<IOptions<PollLeaseOptions>>().Value.KeyPrefix,
            sp.GetRequiredService<IOptions<PollingOptions>>().Value.DefaultInterval,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>()));
        // The Redis catalog unless the application registered its own session source.
        services.TryAddSingleton<ISessionDirectory>(sp => sp.GetRequiredService<SessionCatalog>());
        services.TryAddSingleton<IPollSessionSource>(sp => sp.GetRequiredService<SessionCatalog>());

        services.TryAddSingleton(sp => new LeaseManager(
            sp.GetRequiredService<IConnectionMultiplexer>(),
            sp.GetRequiredService<IOptions<PollLeaseOptions>>().Value,
            sp.GetRequiredService<ISessionDirectory>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>(),
            sp.GetService<IMeterFactory>()));
        // Resolvable by itself too, so PollLeaseTriggers can reach the running instance's poll loop.
        services.TryAddSingleton<PollLeaseHostedService>();
        services.AddHostedService(sp => sp.GetRequiredService<PollLeaseHostedService>());
        services.TryAddSingleton(sp => new PollLeaseTriggers(
            sp.GetRequiredService<LeaseManager>(),
            sp.GetRequiredService<PollLeaseHostedService>(),
            sp.GetRequiredService<FleetJanitorHostedService>().Janitor,
            sp.GetRequiredService<ILoggerFactory>()));

        // The fleet janitor (PollLease:Janitor:Enabled): one elected instance cleans up and reports the fleet.
        services.AddOptions<JanitorOptions>().Bind(configuration.GetSection(JanitorOptions.SectionName))
            .PostConfigure<IOptions<PollLeaseOptions>>((j, lease) =>
            {
                j.Election.Role = JanitorOptions.Role;
                j.Election.KeyPrefix = lease.Value.KeyPrefix;
                j.Election.InstanceId = lease.Value.InstanceId ?? "";
            })
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<JanitorOptions>, JanitorOptionsValidator>());
        services.TryAddSingleton<FleetJanitorHostedService>();
        services.AddHostedService(sp => sp.GetRequiredService<FleetJanitorHostedService>());
        return services;
    }

    /// <summary>Registers the poll handler every session of this instance is polled with (one singleton).</summary>
    /// <typeparam name="THandler">The handler type.</typeparam>
    /// <param name="services">The service collection.</param>
    public static IServiceCollection AddPollHandler<THandler>(this IServiceCollection services)
        where THandler : class, IPollHandler
    {
        ArgumentNullException.ThrowIfNull(services);
        services.RemoveAll<IPollHandler>();
        services.AddSingleton<IPollHandler, THandler>();
        return services;
    }
}
