namespace PollLease.Assignment;

/// <summary>What a planner knows at the start of a cycle.</summary>
/// <param name="Self">This instance's id.</param>
/// <param name="LiveNodes">Live instance ids from the last cycle (includes this one once registered).</param>
/// <param name="ActiveSessions">Sessions that should be polled.</param>
/// <param name="Held">Sessions this instance holds (Owned or Uncertain).</param>
/// <param name="HeldElsewhere">Sessions known to be held by a live other instance whose lease has not yet expired, with that holder.</param>
/// <param name="HandedOff">Sessions another instance has just released (rebalance or shutdown): left to their preferred owner for a moment.</param>
/// <param name="Orphaned">Sessions whose last known holder let the lease expire (it stopped renewing), with that holder.</param>
internal sealed record LeasePlanInput(
    string Self,
    IReadOnlyList<string> LiveNodes,
    IReadOnlyCollection<string> ActiveSessions,
    IReadOnlySet<string> Held,
    IReadOnlyDictionary<string, string> HeldElsewhere,
    IReadOnlySet<string> HandedOff,
    IReadOnlyDictionary<string, string> Orphaned)
{
    /// <summary>
    /// Each live instance's heartbeat age by server time when the fleet view was read (how long since it last
    /// heartbeat): an instance that stopped heartbeating cannot take sessions. Empty: unknown, every instance counts.
    /// </summary>
    public IReadOnlyDictionary<string, TimeSpan> HeartbeatAge { get; init; } = EmptyAges;

    /// <summary>How long ago the fleet view (<see cref="LiveNodes"/>, <see cref="HeartbeatAge"/>) was read.</summary>
    public TimeSpan ViewAge { get; init; }

    private static readonly IReadOnlyDictionary<string, TimeSpan> EmptyAges = new Dictionary<string, TimeSpan>();
}

/// <summary>What to acquire and what to release (with the reason) in this cycle's round trip.</summary>
internal sealed record LeasePlan(IReadOnlyList<string> Acquire, IReadOnlyList<(string SessionId, string Reason)> Release);

/// <summary>Decides, each cycle, which leases an instance should try to take and which to give up.</summary>
internal interface ILeasePlanner
{
    LeasePlan Plan(LeasePlanInput input);
}
