using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Election;
using StackExchange.Redis;

namespace Roles;

/// <summary>Options of the role-only duty.</summary>
internal sealed class FleetReportOptions
{
    public const string SectionName = "FleetReport";

    /// <summary>Time between two reports while this instance leads the role.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Stands for the roles of this instance through <see cref="RoleManager"/>, over the connection and the instance
/// id PollLease already uses, and runs each role's duty only while it leads the role.
/// </summary>
internal sealed partial class RolesService(
    IConnectionMultiplexer redis,
    IOptions<PollLeaseOptions> lease,
    IOptions<FleetReportOptions> report,
    ILoggerFactory loggerFactory,
    IMeterFactory meterFactory,
    ILogger<RolesService> logger) : IHostedService, IAsyncDisposable
{
    public const string FleetReportRole = "fleet-report";

    private RoleManager? _roles;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // One template for every role: the fleet's key prefix (keys {prefix}:leader:<role>) and this instance's
        // id; the timings stay at their defaults (TTL 15 s, renew every 2 s, act until 10 s after the last renew).
        var template = new ElectionOptions { KeyPrefix = lease.Value.KeyPrefix, InstanceId = lease.Value.InstanceId! };
        _roles = new RoleManager(redis, template, TimeProvider.System, loggerFactory, meterFactory);
        _roles.AddRole(FleetReportRole, new ElectionCallbacks
        {
            // Runs for the whole term: the duty loop ends when term.Leadership is cancelled (demotion, stop).
            OnPromote = term => RunFleetReportAsync(term),
            OnDemote = reason =>
            {
                Demoted(logger, FleetReportRole, reason);
                return Task.CompletedTask;
            },
            OnNewLeader = leader =>
            {
                NewLeader(logger, FleetReportRole, leader);
                return Task.CompletedTask;
            },
        });
        await _roles.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_roles is not null)
        {
            // Deletes the leader key this instance holds, so another instance takes the role at once.
            await _roles.StopAsync(new ElectionStopOptions { DemoteTimeout = TimeSpan.FromSeconds(2) }, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_roles is not null)
        {
            await _roles.DisposeAsync().ConfigureAwait(false);
        }
    }

    // The role-only duty: a summary of the fleet, from one instance at a time.
    private async Task RunFleetReportAsync(ElectionTerm term)
    {
        Promoted(logger, term.Role, term.Token);
        var reader = new FleetStatusReader(redis, lease.Value.KeyPrefix);
        using var timer = new PeriodicTimer(report.Value.Interval);
        try
        {
            do
            {
                // A duty with side effects outside PollLease would check the term right before acting (or fence
                // its writes on term.Token): a paused leader may resume after another has been elected.
                if (!await _roles![term.Role].ValidateTokenAsync(term.Token, term.Leadership).ConfigureAwait(false))
                {
                    break;
                }
                var status = await reader.ReadAsync(term.Leadership).ConfigureAwait(false);
                var busiest = status.CountsByOwner.Count == 0 ? 0 : status.CountsByOwner.Values.Max();
                Report(logger, term.Token, status.LiveCount, status.ActiveCount, status.Unowned.Count, busiest, status.Ideal);
            }
            while (await timer.WaitForNextTickAsync(term.Leadership).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (term.Leadership.IsCancellationRequested)
        {
            // The term ended: stop reporting.
        }
        catch (RedisException ex)
        {
            // The election notices a Redis outage too and demotes this instance; the next term starts afresh.
            ReportFailed(logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Role {Role}: this instance leads it (token {Token})")]
    private static partial void Promoted(ILogger logger, string role, long token);

    [LoggerMessage(Level = LogLevel.Information, Message = "Role {Role}: this instance no longer leads it ({Reason})")]
    private static partial void Demoted(ILogger logger, string role, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Role {Role}: the leader is {Leader}")]
    private static partial void NewLeader(ILogger logger, string role, string leader);

    [LoggerMessage(Level = LogLevel.Information, Message = "Fleet report (token {Token}): {Live} live instances, {Sessions} active sessions, {Unowned} unowned, busiest instance {Busiest} (ideal {Ideal})")]
    private static partial void Report(ILogger logger, long token, int live, int sessions, int unowned, int busiest, int ideal);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Fleet report failed")]
    private static partial void ReportFailed(ILogger logger, Exception exception);
}
