using Microsoft.Extensions.Logging;
using PollLease.Telemetry;

namespace PollLease.Coordination;

/// <summary>Logs, counts and hands out lease events; a subscriber that throws is logged and never stops the cycle.</summary>
internal sealed class LeaseNotifier(ILogger logger, LeaseMetrics metrics, string instanceId)
{
    public void Raise(IReadOnlyList<LeaseEvent> events, object sender, EventHandler<LeaseEvent>? handler)
    {
        foreach (var e in events)
        {
            switch (e.Kind)
            {
                case LeaseEventKind.Acquired:
                    LeaseLog.Acquired(logger, instanceId, e.SessionId, e.Token);
                    break;
                case LeaseEventKind.Renewed:
                    LeaseLog.Renewed(logger, instanceId, e.SessionId, e.Token);
                    break;
                case LeaseEventKind.Uncertain:
                    LeaseLog.Uncertain(logger, instanceId, e.SessionId, e.Token, e.Reason ?? "");
                    break;
                case LeaseEventKind.Lost:
                    metrics.Lost(e.Reason ?? "");
                    LeaseLog.Lost(logger, instanceId, e.SessionId, e.Token, e.Reason ?? "");
                    break;
                case LeaseEventKind.Released:
                    metrics.Released(e.Reason ?? "", 1);
                    LeaseLog.Released(logger, instanceId, e.SessionId, e.Reason ?? "");
                    break;
            }
            if (handler is null)
            {
                continue;
            }
            try
            {
                handler(sender, e);
            }
#pragma warning disable CA1031 // A subscriber's bug must not stop the lease cycle; it is logged with the event.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LeaseLog.HandlerFailed(logger, ex, instanceId, e.Kind.ToString(), e.SessionId);
            }
        }
    }

    public void CycleFailed() => metrics.CycleFailed();

    public void CycleDuration(TimeSpan elapsed) => metrics.CycleDuration(elapsed);

    /// <summary>Counts what a cycle changed (losses and releases are counted as they are raised).</summary>
    public void Counted(CycleApplied applied)
    {
        metrics.Acquired(applied.Acquired);
        foreach (var (session, token, from) in applied.Failovers)
        {
            metrics.Failover(from);
            LeaseLog.Failover(logger, instanceId, session, token, from);
        }
    }
}
