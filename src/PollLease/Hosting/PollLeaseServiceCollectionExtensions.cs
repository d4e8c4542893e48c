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
    /// poll handler with <see cref="AddPollHandler{THandler}"/>. Sessions come from the Redis
    /// <see cref="SessionCatalog"/> unless an <see cref="ISessionSource"/> is registered before this call.
    /// </summary>
    /// <remarks>
    /// The host's start never waits for Redis: the connection (with its hooks, e.g. an Entra ID token) is made in the
    /// background and retried with backoff, and the instance registers once it exists. Resolving
    /// <see cref="IConnectionMultiplexer"/>, <see cref="LeaseManager"/>, <see cref="SessionCatalog"/> or
    /// <see cref="MessageLog"/> yourself waits for that first connection. The host's stop takes at most
    /// <see cref="PollLeaseOptions.ShutdownTimeout"/>; leases it cannot release in that time expire by their TTL.
    /// </remarks>
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

        // Nothing here connects: the connection is made in the background once the host starts (PollLeaseConnection),
        // and every Redis-backed service below is resolved by the hosted services only after it exists. An application's
        // own multiplexer, registered before this call, is used instead.
        var appConnection = services.Any(d => d.ServiceType == typeof(IConnectionMultiplexer));
        services.TryAddSingleton(sp => new PollLeaseConnection(
            sp.GetRequiredService<IOptions<PollLeaseOptions>>(),
            sp.GetRequiredService<IOptions<PollLeaseRedisOptions>>(),
            sp.GetRequiredService<ShutdownBudget>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>(),
            appConnection ? sp.GetRequiredService<IConnectionMultiplexer> : null));
        services.TryAddSingleton<IConnectionMultiplexer>(sp => sp.GetRequiredService<PollLeaseConnection>().TakeForContainer());
        services.TryAddSingleton<ShutdownBudget>();
        // The first hosted service: started first, stopped last (after the leases and the janitor).
        services.AddHostedService(sp => sp.GetRequiredService<PollLeaseConnection>());

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
        services.TryAddSingleton<ISessionSource>(sp => sp.GetRequiredService<SessionCatalog>());

        services.TryAddSingleton(sp => new LeaseManager(
            sp.GetRequiredService<IConnectionMultiplexer>(),
            sp.GetRequiredService<IOptions<PollLeaseOptions>>().Value,
            sp.GetRequiredService<ISessionSource>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>(),
            sp.GetService<IMeterFactory>()));
        // The fleet janitor (PollLease:Janitor:Enabled): one elected instance cleans up and reports the fleet. Registered
        // before the instance's own service so that the host, which stops services in reverse order, releases the leases
        // first and leaves the election with what is left of the stop budget.
        services.AddOptions<JanitorOptions>().Bind(configuration.GetSection(JanitorOptions.SectionName))
            .PostConfigure<IOptions<PollLeaseOptions>>((j, lease) =>
            {
                j.Election.Role = JanitorOptions.Role;
                (j.Election.KeyPrefix, j.Election.InstanceId) = JanitorIdentity(lease);
            })
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<JanitorOptions>, JanitorOptionsValidator>());
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<JanitorOptions>>().Value;
            var lease = sp.GetRequiredService<IOptions<PollLeaseOptions>>().Value;
            var sessions = sp.GetRequiredService<ISessionSource>();
            var janitor = new FleetJanitor(sp.GetRequiredService<IConnectionMultiplexer>(), lease.KeyPrefix, lease.InstanceId!, lease.HeartbeatTtl,
                options, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetService<IMeterFactory>());
            // The source in use is the registered Redis catalog unless the application registered its own.
            if (!ReferenceEquals(sessions, sp.GetRequiredService<SessionCatalog>()))
            {
                janitor.SessionsOutsideCatalog();
            }
            if (options.PublishAssignment)
            {
                janitor.PublishAssignments(sessions, lease.BalanceEpsilon);
            }
            return janitor;
        });
        services.TryAddSingleton<FleetJanitorHostedService>();
        services.AddHostedService(sp => sp.GetRequiredService<FleetJanitorHostedService>());

        // Resolvable by itself too, so PollLeaseTriggers can reach the running instance.
        services.TryAddSingleton<PollLeaseHostedService>();
        services.AddHostedService(sp => sp.GetRequiredService<PollLeaseHostedService>());
        services.TryAddSingleton(sp => new PollLeaseTriggers(
            sp.GetRequiredService<PollLeaseHostedService>(),
            sp.GetRequiredService<FleetJanitorHostedService>(),
            sp.GetRequiredService<IOptions<PollLeaseOptions>>(),
            sp.GetRequiredService<ILoggerFactory>()));
        return services;
    }

    /// <summary>
    /// The janitor's election runs under the instance's key prefix and id. When the lease section is invalid, the host's
    /// start-up validation reports it and the host does not start; the janitor then takes stand-ins, so that its own
    /// failures are reported beside the lease section's rather than replaced by them.
    /// </summary>
    private static (string KeyPrefix, string InstanceId) JanitorIdentity(IOptions<PollLeaseOptions> lease)
    {
        try
        {
            return (lease.Value.KeyPrefix, lease.Value.InstanceId ?? "");
        }
        catch (OptionsValidationException)
        {
            return ("invalid-lease-options", "invalid-lease-options");
        }
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
