namespace PollLease.Assignment;

/// <summary>
/// The planner's memory of hand-offs and acquisitions, so that no session flaps between instances whatever fails:
/// <list type="bullet">
/// <item>An instance acquires one session at most twice per lease TTL: a third acquisition inside the window is not
/// planned, and a session acquired twice inside it is kept rather than handed off again.</item>
/// <item>A hand-off (release for rebalance) is checked: if the target has not taken the session within
/// <c>handOffBound</c>, the releaser tries the session again; getting it back means the target could not take it,
/// and that target gets no hand-offs for a backoff (one lease TTL, doubling per failure up to 8).</item>
/// </list>
/// Pure and synchronous: it sees what the planner sees each cycle and a monotonic timestamp, nothing else.
/// </summary>
internal sealed class HandOffTracker
{
    /// <summary>The longest backoff, in lease TTLs.</summary>
    internal const int MaxBackoffTtls = 8;

    private readonly long _window;
    private readonly long _bound;
    private readonly Dictionary<string, (long Previous, long Last)> _acquired = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Target, long Since)> _pending = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (int Failures, long Until)> _backoff = new(StringComparer.Ordinal);
    private HashSet<string> _held = new(StringComparer.Ordinal);

    /// <param name="leaseTtl">The window of the two-acquisitions rule and the first backoff.</param>
    /// <param name="handOffBound">How long a target has to take a session handed to it.</param>
    /// <param name="frequency">Ticks per second of the timestamps passed in.</param>
    public HandOffTracker(TimeSpan leaseTtl, TimeSpan handOffBound, long frequency)
    {
        _window = (long)(leaseTtl.TotalSeconds * frequency);
        _bound = (long)(handOffBound.TotalSeconds * frequency);
    }

    /// <summary>Sessions handed off and not yet seen taken or back.</summary>
    public IReadOnlyDictionary<string, (string Target, long Since)> Pending => _pending;

    /// <summary>
    /// Takes in a cycle's view: sessions that appear in <paramref name="held"/> were acquired (a hand-off of one of
    /// them failed); a pending session seen held by its target succeeded, one seen held by another is forgotten.
    /// </summary>
    /// <returns>The hand-offs found failed, with the backoff their target now has (ticks).</returns>
    public List<(string Session, string Target, long Backoff)> Observe(IReadOnlySet<string> held, IReadOnlyDictionary<string, string> heldElsewhere, long now)
    {
        var failed = new List<(string, string, long)>();
        foreach (var session in held)
        {
            if (_held.Contains(session))
            {
                continue;
            }
            _acquired[session] = _acquired.TryGetValue(session, out var times) ? (times.Last, now) : (long.MinValue, now);
            if (_pending.Remove(session, out var handOff))
            {
                failed.Add((session, handOff.Target, Failed(handOff.Target, now)));
            }
        }
        _held = new HashSet<string>(held, StringComparer.Ordinal);

        List<string>? resolved = null;
        foreach (var (session, handOff) in _pending)
        {
            if (heldElsewhere.TryGetValue(session, out var holder))
            {
                if (string.Equals(holder, handOff.Target, StringComparison.Ordinal))
                {
                    _backoff.Remove(handOff.Target);
                }
                (resolved ??= []).Add(session);
            }
            else if (now - handOff.Since > _bound + _window)
            {
                // Never resolved (the check could not run): forget it rather than keep it for ever.
                (resolved ??= []).Add(session);
            }
        }
        foreach (var session in resolved ?? [])
        {
            _pending.Remove(session);
        }
        if (_acquired.Count > 2 * (_held.Count + 16))
        {
            foreach (var session in _acquired.Where(kv => now - kv.Value.Last >= _window).Select(kv => kv.Key).ToList())
            {
                _acquired.Remove(session);
            }
        }
        return failed;
    }

    /// <summary>False when this instance already acquired the session twice in the last lease TTL.</summary>
    public bool MayAcquire(string session, long now) =>
        !_acquired.TryGetValue(session, out var times) || times.Previous == long.MinValue || now - times.Previous >= _window;

    /// <summary>
    /// True when the session may be handed to <paramref name="target"/> now: the target is not backing off after a
    /// failed hand-off, and a failed hand-off would not make a third acquisition within the lease TTL.
    /// </summary>
    public bool MayHandOff(string session, string target, long now) =>
        !InBackoff(target, now) && MayAcquire(session, now);

    /// <summary>True while hand-offs to <paramref name="target"/> are suspended.</summary>
    public bool InBackoff(string target, long now) => _backoff.TryGetValue(target, out var b) && now < b.Until;

    /// <summary>Records a release for rebalance to <paramref name="target"/>.</summary>
    public void HandedOff(string session, string target, long now) => _pending[session] = (target, now);

    /// <summary>Hand-offs whose target had its time: the planner tries them again to learn whether the target took them.</summary>
    public IEnumerable<(string Session, string Target)> DueChecks(long now)
    {
        foreach (var (session, handOff) in _pending)
        {
            if (now - handOff.Since >= _bound)
            {
                yield return (session, handOff.Target);
            }
        }
    }

    /// <summary>Forgets a pending hand-off that no longer applies (its session now belongs to another instance).</summary>
    public void Forget(string session) => _pending.Remove(session);

    private long Failed(string target, long now)
    {
        var failures = _backoff.TryGetValue(target, out var b) ? b.Failures + 1 : 1;
        var backoff = Math.Min(MaxBackoffTtls, 1L << Math.Min(failures - 1, 30)) * _window;
        _backoff[target] = (failures, now + backoff);
        return backoff;
    }
}
