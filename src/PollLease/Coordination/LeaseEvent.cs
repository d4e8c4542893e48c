namespace PollLease.Coordination;

/// <summary>The kinds of lease change an instance reports.</summary>
public enum LeaseEventKind
{
    /// <summary>This instance acquired the lease (with a new fencing token).</summary>
    Acquired,

    /// <summary>
    /// The lease counts as owned again after a failed cycle had made it Uncertain. Renewing is the instance's
    /// heartbeat, which keeps every lease at once, so a cycle that merely keeps them raises no event per lease.
    /// </summary>
    Renewed,

    /// <summary>A renew failed or timed out: no new polls until it succeeds again.</summary>
    Uncertain,

    /// <summary>The lease is gone: its deadline passed, it expired in Redis, or another instance holds it.</summary>
    Lost,

    /// <summary>This instance released the lease on purpose.</summary>
    Released,
}

/// <summary>Reasons carried by <see cref="LeaseEvent.Reason"/> and the <c>reason</c> tag of metrics.</summary>
public static class LeaseReasons
{
    /// <summary>Released because the instance is stopping.</summary>
    public const string Shutdown = "shutdown";

    /// <summary>Released because another live instance is now preferred for the session.</summary>
    public const string Rebalance = "rebalance";

    /// <summary>Released because the session was removed from the catalog or paused.</summary>
    public const string Inactive = "inactive";

    /// <summary>Released because a caller asked for it.</summary>
    public const string Requested = "requested";

    /// <summary>Lost because the local validity deadline passed without a successful renew.</summary>
    public const string Deadline = "deadline";

    /// <summary>Lost because the lease key was gone in Redis when its safety expiry was refreshed.</summary>
    public const string Expired = "expired";

    /// <summary>
    /// Lost because this instance's heartbeat had expired (or Redis lost it) when its next cycle ran: every lease
    /// hangs on the heartbeat, so all of them were given up (and deleted in Redis) at once.
    /// </summary>
    public const string HeartbeatLapsed = "heartbeat-lapsed";

    /// <summary>Lost because Redis shows another owner or token.</summary>
    public const string Taken = "taken";

    /// <summary>Renew failed (Redis unreachable, timed out or answered with an error).</summary>
    public const string RenewFailed = "renew-failed";
}

/// <summary>One change of one lease, raised by <see cref="LeaseManager.LeaseChanged"/>.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="InstanceId">This instance.</param>
/// <param name="SessionId">The session whose lease changed.</param>
/// <param name="Token">The lease's fencing token (0 when none was issued).</param>
/// <param name="Reason">Why, for Released, Lost and Uncertain (see <see cref="LeaseReasons"/>); null otherwise.</param>
/// <param name="Timestamp">When it was observed.</param>
public sealed record LeaseEvent(LeaseEventKind Kind, string InstanceId, string SessionId, long Token, string? Reason, DateTimeOffset Timestamp);
