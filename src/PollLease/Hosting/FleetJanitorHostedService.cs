using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Election;
using PollLease.Fleet;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.Hosting;

/// <summary>
/// Runs the janitor election in every instance when <see cref="JanitorOptions.Enabled"/>; the elected one does the
/// fleet-wide duties. Orphan cleaning needs the Redis catalog: with an application-supplied session directory the
/// catalog set is not the source of truth, so only the registry and the gauges are looked after.
/// </summary>
internal sealed class FleetJanitorHostedService : IHostedService, IAsyncDisposable
{
    private readonly FleetJanitor? _janitor;

    public FleetJanitorHostedService(
        IOptions<JanitorOptions> janitor,
        IOptions<PollLeaseOptions> lease,
        IConnectionMultiplexer redis,
        ISessionDirectory sessions,
        TimeProvider time,
        ILoggerFactory loggerFactory,
        IMeterFactory? meterFactory = null)
    {
        var options = janitor.Value;
        if (!options.Enabled)
        {
            return;
        }
        options.CleanOrphans &= sessions is SessionCatalog;
        var l = lease.Value;
        _janitor = new FleetJanitor(redis, l.KeyPrefix, l.InstanceId!, l.HeartbeatTtl, options, time, loggerFactory, meterFactory);
        if (options.PublishAssignment)
        {
            _janitor.PublishAssignments(sessions, l.BalanceEpsilon);
        }
    }

    /// <summary>The janitor, or null when disabled.</summary>
    public FleetJanitor? Janitor => _janitor;

    public Task StartAsync(CancellationToken cancellationToken) => _janitor?.StartAsync(cancellationToken) ?? Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => _janitor?.StopAsync(cancellationToken) ?? Task.CompletedTask;

    public ValueTask DisposeAsync() => _janitor?.DisposeAsync() ?? ValueTask.CompletedTask;
}
