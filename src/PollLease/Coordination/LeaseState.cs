namespace PollLease.Coordination;

/// <summary>What this instance believes about one session's lease.</summary>
public enum LeaseState
{
    /// <summary>Not held by this instance.</summary>
    None = 0,

    /// <summary>Held and locally valid: polls may start.</summary>
    Owned = 1,

    /// <summary>
    /// The last renew failed or timed out. The lease may still be ours, but no new poll starts; renewing and
    /// re-acquiring go on until the local validity deadline, when it becomes <see cref="Lost"/>.
    /// </summary>
    Uncertain = 2,

    /// <summary>The local validity deadline passed, or Redis said another instance holds it, or it expired there.</summary>
    Lost = 3,
}
