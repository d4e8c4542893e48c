namespace PollLease.Election;

/// <summary>
/// What a <see cref="LeaderElection"/> calls as leadership changes. All are optional. Callbacks run off the
/// election loop, one after another in the order the changes happened; an exception is logged and never stops
/// the election, and a callback that never returns cannot delay a demotion.
/// </summary>
public sealed class ElectionCallbacks
{
    /// <summary>
    /// Called when this instance becomes leader, with the fencing token and a CancellationToken that is cancelled
    /// the moment leadership ends. It may run for the whole term (it is started, not awaited, by the dispatcher).
    /// </summary>
    public Func<ElectionTerm, Task>? OnPromote { get; init; }

    /// <summary>Called after this instance stopped being leader, with the reason (see <see cref="DemotionReasons"/>).</summary>
    public Func<string, Task>? OnDemote { get; init; }

    /// <summary>Called when the observed leader changes (this instance included).</summary>
    public Func<string, Task>? OnNewLeader { get; init; }

    /// <summary>
    /// Checked before each renew (and before each attempt to stand): false, an exception or no answer within
    /// <see cref="ElectionOptions.OperationTimeout"/> is a failure; <see cref="ElectionOptions.HealthCheckFailureThreshold"/>
    /// consecutive failures make the leader step down and release the key, and keep a follower from standing.
    /// </summary>
    public Func<CancellationToken, Task<bool>>? HealthCheck { get; init; }
}
