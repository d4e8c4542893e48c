using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Fleet;
using PollLease.Telemetry;

namespace PollLease.Hosting;

/// <summary>
/// Entry points for triggers from outside the instance's own loops: the Azure Functions timer and warm-up functions
/// call these. Azure runs a timer function on one instance at a time across a scaled-out app, so the triggers never
/// carry an instance's heartbeat or renewals (the hosted service does, on every instance); they make the instance
/// they land on act now, and are where fleet-wide duties run.
/// </summary>
public sealed class PollLeaseTriggers
{
    private readonly PollLeaseHostedService _hosted;
    private readonly FleetJanitorHostedService _janitor;
    private readonly string _instanceId;
    private readonly ILogger _logger;

    internal PollLeaseTriggers(PollLeaseHostedService hosted, FleetJanitorHostedService janitor, IOptions<PollLeaseOptions> options, ILoggerFactory loggerFactory)
    {
        _hosted = hosted;
        _janitor = janitor;
        _instanceId = options.Value.InstanceId ?? "";
        _logger = loggerFactory.CreateLogger("PollLease.Hosting");
    }

    /// <summary>
    /// Runs this instance's lease cycle now (heartbeat, renew, acquire, release in one round trip), never at the same
    /// time as the hosted loop's cycle: both wait on the lease manager's cycle gate. When the host has started but the
    /// instance is still connecting or registering (Redis was down, a token was late), waits for that first, as long as
    /// <paramref name="cancellationToken"/> allows. Does nothing while the host is not running, so a trigger that
    /// arrives during shutdown cannot register the instance again after it deregistered. Then, when this instance holds
    /// the janitor role, runs the fleet-wide sweep (never alongside the janitor's own).
    /// </summary>
    /// <param name="trigger">Which trigger fired (logged), e.g. <c>timer</c> or <c>warmup</c>.</param>
    /// <param name="cancellationToken">Cancels the wait and the cycle.</param>
    /// <returns>The cycle's result, or null when the instance is not running.</returns>
    public async Task<LeaseCycleResult?> RunLeaseCycleAsync(string trigger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trigger);
        var leases = await _hosted.WhenRunningAsync(cancellationToken).ConfigureAwait(false);
        var result = leases is null ? null : await leases.RunCycleIfRunningAsync(cancellationToken).ConfigureAwait(false);
        if (leases is null || result is null)
        {
            HostingLog.TriggerSkipped(_logger, _instanceId, trigger);
            return null;
        }
        HostingLog.TriggeredCycle(_logger, _instanceId, trigger, result.Succeeded, result.Acquired, result.Renewed, result.Lost, result.LiveNodes);
        // Fleet-wide duties run after this instance's own cycle, so they see a fresh view of the fleet; only the elected
        // janitor sweeps, wherever the timer lands (the janitor's own loop sweeps on its interval regardless).
        if (_janitor.Janitor is { } janitor && await janitor.SweepNowAsync(cancellationToken).ConfigureAwait(false) is { } sweep)
        {
            HostingLog.TriggeredSweep(_logger, _instanceId, trigger, sweep.RemovedNodes, sweep.RemovedLeases, sweep.RemovedFences);
        }
        return result;
    }

    /// <summary>
    /// Runs this instance's poll scheduling pass now: due polls of the sessions it owns start at once (polls never
    /// start for sessions it does not own, and the pass never overlaps the loop's own).
    /// </summary>
    /// <param name="trigger">Which trigger fired (logged).</param>
    /// <returns>The number of leases this instance holds, for the trigger's log line (0 when it is not running).</returns>
    public int PollNow(string trigger)
    {
        ArgumentNullException.ThrowIfNull(trigger);
        var leases = _hosted.Leases;
        if (leases is null || !_hosted.WakePolling())
        {
            HostingLog.TriggerSkipped(_logger, _instanceId, trigger);
            return 0;
        }
        var owned = leases.OwnedSessions().Count;
        HostingLog.PollWoken(_logger, _instanceId, trigger, owned);
        return owned;
    }

    /// <summary>
    /// What the app's one timer function does: the lease cycle (<see cref="RunLeaseCycleAsync"/>), then a poll pass over
    /// the sessions this instance owns (<see cref="PollNow"/>), so it sees what the cycle just acquired. One function for
    /// both keeps them in one scale group on Flex Consumption, where every non-HTTP function is scaled on instances of
    /// its own: a second timer function would bring up instances that join the fleet only to be scaled in again.
    /// </summary>
    /// <param name="trigger">Which trigger fired (logged).</param>
    /// <param name="cancellationToken">Cancels the wait and the cycle.</param>
    /// <returns>The cycle's result, or null when the instance is not running.</returns>
    public async Task<LeaseCycleResult?> RunScheduledAsync(string trigger, CancellationToken cancellationToken = default)
    {
        var result = await RunLeaseCycleAsync(trigger, cancellationToken).ConfigureAwait(false);
        if (result is not null)
        {
            PollNow(trigger);
        }
        return result;
    }
}
