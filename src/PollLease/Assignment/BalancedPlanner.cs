using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PollLease.Coordination;
using PollLease.Telemetry;

namespace PollLease.Assignment;

/// <summary>The timings the balanced planner decides with, all derived from <see cref="PollLeaseOptions"/>.</summary>
/// <param name="StaleAfter">A live instance whose last heartbeat is older than this cannot take sessions: it is planned without.</param>
/// <param name="HandOffBound">How long a hand-off target has to take the session before the releaser checks.</param>
/// <param name="LeaseTtl">The window of the two-acquisitions rule and the first hand-off backoff.</param>
/// <param name="Settle">How long the instances that can take sessions must stay the same before sessions are handed off.</param>
internal sealed record PlannerTimings(TimeSpan StaleAfter, TimeSpan HandOffBound, TimeSpan LeaseTtl, TimeSpan Settle = default)
{
    /// <summary>
    /// A healthy instance heartbeats once per cycle interval plus one round trip, and a round trip slower than the
    /// operation timeout fails (no heartbeat): a heartbeat older than the cycle interval plus that timeout means the
    /// instance is not getting through. The threshold is lowered, never below the cycle plus the retry interval, to
    /// leave two cycles between the moment a silent instance counts as stale and the expiry of the leases it renewed
    /// with its last heartbeat: its sessions' new owners try them while they are still held, learn the remaining
    /// time, take them at expiry and count the takeover as a failover. A hand-off target learns of the release at
    /// once by event, or at its next cycle if the event is lost, and its round trip may take the operation timeout.
    /// </summary>
    public static PlannerTimings From(PollLeaseOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var cycle = options.CycleInterval;
        var beforeExpiry = options.LeaseTtl - (2 * cycle);
        var stale = Min(cycle + options.OperationTimeout, beforeExpiry > cycle + options.RetryInterval ? beforeExpiry : cycle + options.RetryInterval);
        return new(stale, cycle + options.OperationTimeout, options.LeaseTtl, cycle);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}

/// <summary>
/// Acquires what <see cref="BalancedAssignment"/> gives this instance and hands off (releases, reason
/// <c>rebalance</c>) what it gives another instance, planning with the instances that can take sessions: the live
/// ones whose heartbeat is fresh.
/// </summary>
/// <remarks>
/// One move per membership change: an instance that stops heartbeating (crashed, paused, cut off by its link) is
/// left out of the assignment as soon as its heartbeat is stale, which is what the assignment will be once the
/// registry drops it. Its sessions therefore go straight to their owners in that assignment, each of which tries
/// them at the dead instance's lease expiry; nothing is taken by a stand-in and handed on. From previous owners the
/// leave moves exactly the silent instance's sessions, so every other session stays put.
/// No hand-off to an instance that cannot take it: a stale instance is no target, and
/// <see cref="HandOffTracker"/> checks every hand-off, backs off from a target that did not take one, and caps
/// acquisitions of one session at two per lease TTL.
/// Hand-offs wait until the instances that can take sessions have stayed the same for a cycle, so a fleet that
/// starts one instance after another moves each session once, when the burst of joins is over, instead of once per
/// join; the holders keep polling meanwhile.
/// </remarks>
internal sealed class BalancedPlanner : ILeasePlanner
{
    private readonly double _epsilon;
    private readonly TimeProvider _time;
    private readonly PlannerTimings _timings;
    private readonly HandOffTracker _handOffs;
    private readonly HashSet<string> _stale = new(StringComparer.Ordinal);
    private readonly ILogger _logger;
    private readonly long _settle;
    private string[] _lastAble = [];
    private long _membershipChangedAt;

    private BalancedAssignment _current = BalancedAssignment.Compute([], []);
    private object? _sessionSource;
    private SessionSet _sessions = SessionSet.From([]);
    private PublishedAssignment? _base;
    private (PublishedAssignment? Base, SessionSet Sessions, PreviousOwners? Owners) _resolved;

    public BalancedPlanner(double epsilon, TimeProvider time, PlannerTimings timings, ILogger? logger = null)
    {
        _logger = logger ?? NullLogger.Instance;
        _epsilon = epsilon;
        _time = time;
        _timings = timings;
        _handOffs = new HandOffTracker(timings.LeaseTtl, timings.HandOffBound, time.TimestampFrequency);
        _settle = (long)(timings.Settle.TotalSeconds * time.TimestampFrequency);
    }

    /// <summary>
    /// Plan from the janitor's published assignment (null: from the live instances alone). Every instance following
    /// the same one computes the same owners, and a join or leave then moves only the sessions it must.
    /// </summary>
    public void UseBase(PublishedAssignment? published) => Volatile.Write(ref _base, published);

    /// <summary>The assignment of the last plan (over the instances that could take sessions).</summary>
    public BalancedAssignment Current => Volatile.Read(ref _current);

    /// <summary>Live instances the last plan left out because their heartbeat was stale.</summary>
    public IReadOnlyCollection<string> Stale => _stale;

    internal HandOffTracker HandOffs => _handOffs;

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

        var now = _time.GetTimestamp();
        foreach (var (session, target, backoff) in _handOffs.Observe(input.Held, input.HeldElsewhere, now))
        {
            AssignmentLog.HandOffFailed(_logger, input.Self, session, target, TimeSpan.FromSeconds((double)backoff / _time.TimestampFrequency));
        }
        var able = Able(input);
        able.Sort(StringComparer.Ordinal);
        if (!able.SequenceEqual(_lastAble, StringComparer.Ordinal))
        {
            _lastAble = [.. able];
            _membershipChangedAt = now;
        }
        // A burst of joins (a fleet starting one instance after another) is handed off once, when it is over: the
        // holders keep polling meanwhile, and each session moves once, straight to its owner among all the newcomers.
        var settled = now - _membershipChangedAt >= _settle;
        var assignment = AssignmentFor(able, input.ActiveSessions);
        var acquire = new List<string>();
        foreach (var session in assignment.SessionsOf(input.Self))
        {
            if (!input.Held.Contains(session) && !input.HeldElsewhere.ContainsKey(session) && _handOffs.MayAcquire(session, now))
            {
                acquire.Add(session);
            }
        }
        foreach (var (session, target) in _handOffs.DueChecks(now).ToList())
        {
            if (!string.Equals(assignment.PreferredOwner(session), target, StringComparison.Ordinal))
            {
                // The session belongs to someone else now (the target went stale or left): not this hand-off's business.
                _handOffs.Forget(session);
            }
            else if (!input.Held.Contains(session) && !input.HeldElsewhere.ContainsKey(session) && _handOffs.MayAcquire(session, now))
            {
                // The target had its time: try the session. Held by the target, the attempt fails and tells us so;
                // free, we poll it again and the target backs off.
                acquire.Add(session);
            }
        }

        foreach (var session in input.Held)
        {
            if (!active.Contains(session))
            {
                continue;
            }
            var owner = assignment.PreferredOwner(session);
            if (owner is null || string.Equals(owner, input.Self, StringComparison.Ordinal))
            {
                continue;
            }
            if (settled && _handOffs.MayHandOff(session, owner, now))
            {
                release.Add((session, LeaseReasons.Rebalance));
                _handOffs.HandedOff(session, owner, now);
            }
        }
        return new LeasePlan(acquire, release);
    }

    /// <summary>
    /// The live instances (and this one) less those whose heartbeat was stale when the fleet view was read. When
    /// that view is itself older than the threshold (this instance's own cycles are not getting through), it
    /// judges nobody.
    /// </summary>
    private List<string> Able(LeasePlanInput input)
    {
        var judge = input.ViewAge <= _timings.StaleAfter;
        var able = new List<string>(input.LiveNodes.Count + 1) { input.Self };
        foreach (var node in input.LiveNodes)
        {
            if (string.Equals(node, input.Self, StringComparison.Ordinal))
            {
                continue;
            }
            var age = TimeSpan.Zero;
            if (judge && input.HeartbeatAge.TryGetValue(node, out age) && age > _timings.StaleAfter)
            {
                if (_stale.Add(node))
                {
                    AssignmentLog.Stale(_logger, input.Self, node, age);
                }
            }
            else
            {
                if (_stale.Remove(node))
                {
                    AssignmentLog.Fresh(_logger, input.Self, node);
                }
                able.Add(node);
            }
        }
        _stale.RemoveWhere(n => !input.LiveNodes.Contains(n, StringComparer.Ordinal));
        return able;
    }

    private BalancedAssignment AssignmentFor(List<string> nodes, IReadOnlyCollection<string> sessions)
    {
        var current = _current;
        var published = Volatile.Read(ref _base);
        if (!ReferenceEquals(sessions, _sessionSource))
        {
            // The lease manager hands over the same collection until the catalog changes: the session numbering and
            // the previous owners resolved onto it are built once per change, not per plan.
            _sessionSource = sessions;
            _sessions = SessionSet.From(sessions);
        }
        if (!ReferenceEquals(_resolved.Base, published) || !ReferenceEquals(_resolved.Sessions, _sessions))
        {
            _resolved = (published, _sessions, published is null ? null : PreviousOwners.Resolve(_sessions, published.Owners));
        }
        else if (ReferenceEquals(current.Sessions, _sessions) && current.Nodes.SequenceEqual(nodes, StringComparer.Ordinal))
        {
            return current;
        }
        current = BalancedAssignment.Compute(nodes, _sessions, _resolved.Owners, _epsilon);
        Volatile.Write(ref _current, current);
        return current;
    }
}

/// <summary>The fleet's heartbeat ages as one cycle's reply reported them, and when that reply was read (local timestamp).</summary>
internal sealed record FleetBeats(IReadOnlyDictionary<string, TimeSpan> Ages, long ReadAt)
{
    public static readonly FleetBeats None = new(new Dictionary<string, TimeSpan>(), 0);

    /// <summary>An instance's heartbeat age is a beat's lifetime (LeaseTtl: the score is beat time + LeaseTtl) less what its entry has left, by server time.</summary>
    public static FleetBeats From(CycleResponse response, TimeSpan beatLifetime, long readAt)
    {
        var ages = new Dictionary<string, TimeSpan>(response.HeartbeatExpiry.Count, StringComparer.Ordinal);
        foreach (var (node, expiry) in response.HeartbeatExpiry)
        {
            ages[node] = beatLifetime - TimeSpan.FromMilliseconds(expiry - response.ServerTimeMs);
        }
        return new FleetBeats(ages, readAt);
    }
}
