using Microsoft.Extensions.Logging;
using PollLease.Coordination;
using PollLease.Election;
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
    private readonly LeaseManager _leases;
    private readonly PollLeaseHostedService _hosted;
    private readonly FleetJanitor? _janitor;
    private readonly ILogger _logger;

    internal PollLeaseTriggers(LeaseManager leases, PollLeaseHostedService hosted, FleetJanitor? janitor, ILoggerFactory loggerFactory)
    {
        _leases = leases;
        _hosted = hosted;
        _janitor = janitor;
        _logger = loggerFactory.CreateLogger("PollLease.Hosting");
    }

    /// <summary>
    /// Runs this instance's lease cycle now (heartbeat, renew, acquire, release in one round trip), never at the same
    /// time as the hosted loop's cycle: both wait on the lease manager's cycle gate. Registers the instance if it is
    /// not registered yet (e.g. Redis was down when the host started). Does nothing while the host is not running, so
    /// a trigger that arrives during shutdown cannot register the instance again after it deregistered. Then, when
    /// this instance holds the janitor role, runs the fleet-wide sweep (never alongside the janitor's own).
    /// </summary>
    /// <param name="trigger">Which trigger fired (logged), e.g. <c>timer</c> or <c>warmup</c>.</param>
    /// <param name="cancellationToken">Cancels the wait and the cycle.</param>
    /// <returns>The cycle's result, or null when the instance is not running.</returns>
    public async Task<LeaseCycleResult?> RunLeaseCycleAsync(string trigger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trigger);
        var result = await _leases.RunCycleIfRunningAsync(cancellationToken).ConfigureAwait(false);
        if (result is null)
        {
            HostingLog.TriggerSkipped(_logger, _leases.InstanceId, trigger);
            return null;
        }
        HostingLog.TriggeredCycle(_logger, _leases.InstanceId, trigger, result.Succeeded, result.Acquired, result.Renewed, result.Lost, result.LiveNodes);
        // Fleet-wide duties run after this instance's own cycle, so they see a fresh view of the fleet; only the elected
        // janitor sweeps, wherever the timer lands (the janitor's own loop sweeps on its interval regardless).
        if (_janitor is not null && await _janitor.SweepNowAsync(cancellationToken).ConfigureAwait(false) is { } sweep)
        {
            HostingLog.TriggeredSweep(_logger, _leases.InstanceId, trigger, sweep.RemovedNodes, sweep.RemovedLeases, sweep.RemovedFences);
        }
        return result;
    }

    /// <summary>
    /// Runs this instance's poll scheduling pass now: due polls of the sessions it owns start at once (polls never
    /// start for sessions it does not own, and the pass never overlaps the loop's own).
    /// </summary>
    /// <param name="trigger">Which trigger fired (logged).</param>
    /// <returns>The number of leases this instance holds, for the trigger's log line.</returns>
    public int PollNow(string trigger)
    {
        ArgumentNullException.ThrowIfNull(trigger);
        _hosted.WakePolling();
        var owned = _leases.OwnedSessions().Count;
        HostingLog.PollWoken(_logger, _leases.InstanceId, trigger, owned);
        return owned;
    }
}
