using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using PollLease.Assignment;
using PollLease.Telemetry;

namespace PollLease.Coordination;

/// <summary>
/// The one await of a lease cycle: sends a request (<see cref="LeaseStore"/>) and applies its answer, or its
/// failure, to the <see cref="LeaseTable"/>. Keeps what the answers say about the instance (registered, the catalog
/// version) and counts failures. Callers serialise requests (the lease manager's cycle gate).
/// </summary>
internal sealed class CycleSender(LeaseStore store, LeaseTable table, LeaseNotifier notifier, PollLeaseOptions options, TimeProvider time,
    ILogger logger, string instanceId, Action wake)
{
    private int _failures;

    /// <summary>True once a heartbeat was answered; false again after deregistering.</summary>
    public bool Registered { get; private set; }

    /// <summary>The catalog version the last answer reported.</summary>
    public string CatalogVersion { get; private set; } = "";

    /// <summary>Beat when registered, Register otherwise.</summary>
    public HeartbeatMode Beat => Registered ? HeartbeatMode.Beat : HeartbeatMode.Register;

    /// <summary>
    /// Builds the request for <paramref name="plan"/>, sends it and applies the outcome: Response and Applied, or the
    /// Error (a cancellation by <paramref name="cancellationToken"/> is thrown, after the table learnt the request may
    /// have run).
    /// </summary>
    public async Task<Sent> SendAsync(HeartbeatMode mode, LeasePlan plan, List<LeaseEvent> events, CancellationToken cancellationToken)
    {
        var request = table.BuildRequest(mode, plan, events);
        var sent = time.GetTimestamp();
        var epoch = store.Epoch;
        try
        {
            var response = await store.RunAsync(request).WaitAsync(options.OperationTimeout, time, cancellationToken).ConfigureAwait(false);
            if (response.Epoch != epoch && (epoch.Length > 0 || response.Quarantine > TimeSpan.Zero))
            {
                LeaseLog.DataEpoch(logger, instanceId, epoch, response.Epoch, response.Quarantine);
            }
            var applied = table.Apply(request, response, sent, events);
            notifier.Counted(applied);
            if (_failures > 0)
            {
                LeaseLog.Recovered(logger, instanceId, _failures);
                _failures = 0;
            }
            Registered = true;
            if (response.CatalogVersion != CatalogVersion || applied.NodeDropped)
            {
                // The catalog changed since it was read, or an instance dropped out (its sessions are free): plan again now.
                CatalogVersion = response.CatalogVersion;
                wake();
            }
            return new Sent(request, sent, response, applied, null);
        }
        catch (Exception e)
        {
            // Fail closed on any failure of the round trip (connection errors, timeouts, LATE, a malformed reply, the
            // caller giving up): leases turn Uncertain, and what the request may have done in Redis is sent again.
            table.Failed(request, events);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            _failures++;
            notifier.CycleFailed();
            LeaseLog.CycleFailed(logger, e, instanceId, table.Count);
            return new Sent(request, sent, null, null, ExceptionDispatchInfo.Capture(e));
        }
    }

    /// <summary>Accepts requests again (the instance starts).</summary>
    public void Open()
    {
        table.Open();
        store.Open();
    }

    /// <summary>True when Redis holds this instance's lease of <paramref name="sessionId"/> under <paramref name="token"/> (the strict check).</summary>
    /// <remarks>Another value means the lease is not ours whatever the table believed: it is dropped at once.</remarks>
    public async Task<bool> HoldsAsync(string sessionId, long token, CancellationToken cancellationToken)
    {
        var found = await store.GetLeaseValueAsync(sessionId).WaitAsync(options.OperationTimeout, time, cancellationToken).ConfigureAwait(false);
        if (found == LeaseValue.Format(instanceId, token))
        {
            return true;
        }
        table.Taken(sessionId, token, found ?? "");
        return false;
    }

    /// <summary>
    /// The stop's request: releases <paramref name="release"/>, deletes whatever the instance's index still names and
    /// leaves the registry, bounded by ShutdownTimeout and <paramref name="cancellationToken"/>. Never throws.
    /// </summary>
    public async Task<LeaseStopResult> DeregisterAsync(IReadOnlyList<HeldLease> release, CancellationToken cancellationToken)
    {
        try
        {
            var response = await store.RunAsync(new CycleRequest(HeartbeatMode.Deregister, [], [], release))
                .WaitAsync(options.ShutdownTimeout, time, cancellationToken).ConfigureAwait(false);
            Registered = false;
            var released = response.Released.Count(x => x) + response.Swept;
            LeaseLog.Stopped(logger, instanceId, released, true);
            return new LeaseStopResult(released, 0, true);
        }
#pragma warning disable CA1031 // Whatever failed (Redis gone, the budget, a disposed connection) is reported, not thrown.
        catch (Exception e)
#pragma warning restore CA1031
        {
            // The leases are already given up locally; others may take them once this instance's heartbeat expires.
            LeaseLog.StopFailed(logger, e, instanceId, release.Count, options.LeaseTtl);
            return new LeaseStopResult(0, release.Count, false);
        }
    }
}

/// <summary>One request and its outcome: the answer and what it changed, or the error.</summary>
internal sealed record Sent(CycleRequest Request, long At, CycleResponse? Response, CycleApplied? Applied, ExceptionDispatchInfo? Error);
