using PollLease.Coordination;

namespace PollLease.Assignment;

/// <summary>
/// Acquire what <see cref="BalancedAssignment"/> gives this instance, release what it
/// gives a live other instance (reason <c>rebalance</c>), and stand in for a silent preferred owner.
/// </summary>
/// <remarks>
/// The fallback: each session has one takeover candidate (its best-scored other instance). The candidate tries a
/// session nobody is known to hold, so when the preferred owner crashed its leases are taken at their expiry
/// (the lease manager wakes at the PTTL it learnt) rather than when the registry finally drops the dead
/// instance. A session taken that way is kept for <c>holdFallback</c> (about the heartbeat TTL) while the
/// preferred owner still looks live, so it does not bounce back to a dead instance; after that it is handed
/// over like any other. Sessions just handed off by an event are left to their preferred owner.
/// </remarks>
internal sealed class BalancedPlanner : ILeasePlanner
{
    private readonly double _epsilon;
    private readonly TimeProvider _time;
    private readonly TimeSpan _holdFallback;
    private readonly Dictionary<string, (string Preferred, long Until)> _fallbackHeld = new(StringComparer.Ordinal);

    private BalancedAssignment _current = BalancedAssignment.Compute([], []);
    private HashSet<string> _sessions = new(StringComparer.Ordinal);
    private PublishedAssignment? _base;
    private PublishedAssignment? _baseUsed;

    public BalancedPlanner(double epsilon, TimeProvider time, TimeSpan holdFallback)
    {
        _epsilon = epsilon;
        _time = time;
        _holdFallback = holdFallback;
    }

    /// <summary>
    /// Plan from the janitor's published assignment (null: from the live instances alone). Every instance following
    /// the same one computes the same owners, and a join or leave then moves only the sessions it must.
    /// </summary>
    public void UseBase(PublishedAssignment? published) => Volatile.Write(ref _base, published);

    /// <summary>The assignment of the last plan.</summary>
    public BalancedAssignment Current => Volatile.Read(ref _current);

    public LeasePlan Plan(LeasePlanInput input)
    {
        var release = new List<(string, string)>();
        var active = input.ActiveSessions as IReadOnlySet<string> ?? new HashSet<string>(input.ActiveSessions, StringComparer.Ordinal);
        foreach (var session in input.Held)
        {
            if (!active.Contains(session))
            {
                release.Add((session, LeaseReasons.Inactive));
            }
        }
        if (input.LiveNodes.Count == 0)
        {
            // Not registered yet: without the fleet's view every session would look like ours.
            return new LeasePlan([], release);
        }

        var assignment = AssignmentFor(input.LiveNodes.Append(input.Self), input.ActiveSessions);
        var now = _time.GetTimestamp();
        var acquire = new List<string>();
        // Only the sessions assigned to this instance or whose takeover candidate it is can lead to an acquisition:
        // about 2 S/N of them, not all S (at 100,000 sessions the full walk was most of a plan's time).
        foreach (var session in assignment.SessionsOf(input.Self).Concat(assignment.FallbackSessionsOf(input.Self)))
        {
            if (input.Held.Contains(session) || input.HeldElsewhere.ContainsKey(session))
            {
                continue;
            }
            if (assignment.IsPreferredOwner(session, input.Self))
            {
                acquire.Add(session);
            }
            else if (!input.HandedOff.Contains(session) && string.Equals(assignment.Fallback(session), input.Self, StringComparison.Ordinal))
            {
                // The takeover candidate probes sessions it knows nothing about (learning the holder's PTTL) and
                // takes those whose holder stopped renewing. Only the latter are kept while that holder still
                // looks live: a probe that happens to win is handed to the preferred owner next cycle.
                acquire.Add(session);
                var preferred = assignment.PreferredOwner(session)!;
                if (input.Orphaned.TryGetValue(session, out var silent) && string.Equals(silent, preferred, StringComparison.Ordinal))
                {
                    _fallbackHeld[session] = (preferred, now + (long)(_holdFallback.TotalSeconds * _time.TimestampFrequency));
                }
            }
        }

        foreach (var session in input.Held)
        {
            if (!active.Contains(session) || assignment.IsPreferredOwner(session, input.Self))
            {
                _fallbackHeld.Remove(session);
                continue;
            }
            var preferred = assignment.PreferredOwner(session);
            if (preferred is null)
            {
                continue;
            }
            if (_fallbackHeld.TryGetValue(session, out var held) && string.Equals(held.Preferred, preferred, StringComparison.Ordinal) && now < held.Until)
            {
                continue;
            }
            _fallbackHeld.Remove(session);
            release.Add((session, LeaseReasons.Rebalance));
        }
        // Forget fallback marks of sessions we tried but never got.
        if (_fallbackHeld.Count > input.Held.Count + acquire.Count)
        {
            var trying = acquire.ToHashSet(StringComparer.Ordinal);
            foreach (var session in _fallbackHeld.Keys.Where(s => !input.Held.Contains(s) && !trying.Contains(s)).ToList())
            {
                _fallbackHeld.Remove(session);
            }
        }
        return new LeasePlan(acquire, release);
    }

    private BalancedAssignment AssignmentFor(IEnumerable<string> nodes, IReadOnlyCollection<string> sessions)
    {
        var sorted = nodes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var current = _current;
        var published = Volatile.Read(ref _base);
        var sameSessions = sessions.Count == _sessions.Count && _sessions.SetEquals(sessions);
        if (sameSessions && ReferenceEquals(published, _baseUsed) && current.Nodes.SequenceEqual(sorted, StringComparer.Ordinal))
        {
            return current;
        }
        current = BalancedAssignment.Compute(sorted, sessions, _epsilon, published?.Owners);
        _baseUsed = published;
        _sessions = new HashSet<string>(sessions, StringComparer.Ordinal);
        Volatile.Write(ref _current, current);
        return current;
    }
}
