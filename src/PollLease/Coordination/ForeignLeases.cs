namespace PollLease.Coordination;

/// <summary>
/// What an instance has learnt of the other instances: which are live, and the leases they hold, until when (their
/// holder's heartbeat expiry). Not thread-safe (but <see cref="Live"/>): <see cref="LeaseTable"/> calls it under its lock.
/// </summary>
internal sealed class ForeignLeases(TimeProvider time, TimeSpan leaseTtl, Action<string, string>? malformed = null)
{
    private static readonly TimeSpan MinWait = TimeSpan.FromMilliseconds(3);

    private readonly Dictionary<string, Foreign> _known = new(StringComparer.Ordinal);
    private IReadOnlyList<string> _live = [];

    /// <summary>Live instances as of the last answer (or event), sorted; readable without the table's lock.</summary>
    public IReadOnlyList<string> Live => Volatile.Read(ref _live);

    /// <summary>Takes the live set of an answer; true when an instance dropped out (its sessions are free).</summary>
    public bool SetLive(IReadOnlyList<string> live)
    {
        var dropped = _live.Except(live, StringComparer.Ordinal).Any();
        Volatile.Write(ref _live, live);
        return dropped;
    }

    /// <summary>
    /// Another instance announced it released <paramref name="sessions"/> (left to their preferred owner until
    /// <paramref name="until"/>), joined, left, or lost its heartbeat (its leases were deleted: forget them).
    /// </summary>
    public bool OnFleetEvent(FleetEvents.Kind kind, string sender, IEnumerable<string> sessions, long now, long until)
    {
        if (kind == FleetEvents.Kind.Released)
        {
            HandedOff(sender, sessions, now, until);
            return true;
        }
        var live = kind switch
        {
            FleetEvents.Kind.Joined => _live.Contains(sender, StringComparer.Ordinal) ? _live : [.. _live, sender],
            FleetEvents.Kind.Left => _live.Where(n => n != sender).ToArray(),
            _ => _live,
        };
        Volatile.Write(ref _live, live.Order(StringComparer.Ordinal).ToArray());
        if (kind is FleetEvents.Kind.Left or FleetEvents.Kind.Reset)
        {
            Forget(sender);
        }
        return true;
    }

    /// <summary>How early a foreign lease counts as expired: wake-ups timed for an expiry can fire a hair early.</summary>
    private long Tolerance => Ticks(MinWait * 2);

    /// <summary>
    /// Records that <paramref name="value"/> holds <paramref name="session"/> for <paramref name="remaining"/> (until its
    /// holder's heartbeat expires). A release event newer than the request this answers wins over it.
    /// </summary>
    public void Learn(string session, string value, long now, TimeSpan remaining, long holderBeat, long sent = 0)
    {
        if (_known.TryGetValue(session, out var known) && known.HandedOff && known.LearnedAt >= sent)
        {
            // The holder's release event overtook this reply (events come on another connection): the release is
            // the newer fact, and overwriting it would leave the session to nobody until this knowledge goes stale.
            return;
        }
        var isLease = LeaseValue.TryParse(value, out var holder, out _);
        if (!isLease)
        {
            malformed?.Invoke(session, value.Length > 80 ? value[..80] : value);
            holder = value;
            // Garbage often has no TTL: look again a lease TTL later rather than every cycle (one warning per TTL).
            remaining = remaining < leaseTtl ? leaseTtl : remaining;
        }
        // A lease about to expire can report 0 left: still wake for it, a moment later, not a whole cycle later.
        var wait = remaining < MinWait ? MinWait : remaining;
        _known[session] = new Foreign(holder, now + Ticks(wait), Malformed: !isLease) { HolderBeat = holderBeat, LearnedAt = now };
    }

    /// <summary>Another instance has just released these sessions: left to their preferred owner until <paramref name="until"/>.</summary>
    public void HandedOff(string sender, IEnumerable<string> sessions, long now, long until)
    {
        foreach (var session in sessions)
        {
            _known[session] = new Foreign(sender, until, HandedOff: true) { LearnedAt = now };
        }
    }

    /// <summary>Forgets every lease <paramref name="holder"/> was seen holding (it left, or its leases were deleted).</summary>
    public void Forget(string holder)
    {
        foreach (var session in _known.Where(p => p.Value.Holder == holder && !p.Value.HandedOff).Select(p => p.Key).ToList())
        {
            _known.Remove(session);
        }
    }

    /// <summary>
    /// Moves each foreign lease's expiry on by as much as its holder's heartbeat moved: the heartbeat is the lease. A
    /// live holder's leases never look about to expire, so nobody probes them; a crashed holder's stop moving.
    /// </summary>
    public void FollowHolders(IReadOnlyDictionary<string, long> beats)
    {
        List<(string Session, Foreign Moved)>? moved = null;
        foreach (var (session, f) in _known)
        {
            if (!f.HandedOff && f.HolderBeat > 0 && beats.TryGetValue(f.Holder, out var beat) && beat > f.HolderBeat)
            {
                var shift = Ticks(TimeSpan.FromMilliseconds(beat - f.HolderBeat));
                (moved ??= []).Add((session, f with { ExpiresAt = f.ExpiresAt + shift, HolderBeat = beat }));
            }
        }
        foreach (var (session, f) in moved ?? [])
        {
            _known[session] = f;
        }
    }

    /// <summary>
    /// Splits what is known into held by a live other instance, just handed off, and orphaned (the holder stopped
    /// heartbeating). Knowledge older than <paramref name="recheck"/> counts as none, so the session is probed again:
    /// an expiry kept moving by the holder's heartbeat must not hide a release whose event was lost.
    /// </summary>
    public (Dictionary<string, string> Elsewhere, HashSet<string> HandedOff, Dictionary<string, string> Orphaned) Classify(long now, long recheck)
    {
        var elsewhere = new Dictionary<string, string>(StringComparer.Ordinal);
        var handedOff = new HashSet<string>(StringComparer.Ordinal);
        var orphaned = new Dictionary<string, string>(StringComparer.Ordinal);
        var live = new HashSet<string>(_live, StringComparer.Ordinal);
        // A wake-up timed for an expiry can fire a hair early; Redis decides anyway.
        var expiredBy = now + Tolerance;
        foreach (var (session, f) in _known)
        {
            if (f.ExpiresAt <= expiredBy)
            {
                if (!f.HandedOff)
                {
                    orphaned[session] = f.Holder;
                }
                continue;
            }
            if (f.HandedOff)
            {
                handedOff.Add(session);
            }
            else if ((live.Contains(f.Holder) && now - f.LearnedAt <= recheck) || f.Malformed)
            {
                elsewhere[session] = f.Holder;
            }
        }
        return (elsewhere, handedOff, orphaned);
    }

    /// <summary>
    /// Forgets the session (this instance just acquired it) and returns its previous holder when that was a failover:
    /// it was seen held by another instance that never announced a release, and the request went out once that
    /// lease had expired (a release would have freed it before).
    /// </summary>
    public string? TakeFailover(string session, string self, long sent) =>
        _known.Remove(session, out var previous) && !previous.HandedOff && previous.Holder != self && sent + Tolerance >= previous.ExpiresAt
            ? previous.Holder
            : null;

    /// <summary>The earliest expiry still ahead of <paramref name="now"/>; long.MaxValue when none.</summary>
    public long EarliestExpiry(long now)
    {
        var earliest = long.MaxValue;
        foreach (var f in _known.Values)
        {
            if (f.ExpiresAt > now)
            {
                earliest = Math.Min(earliest, f.ExpiresAt);
            }
        }
        return earliest;
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * time.TimestampFrequency);

    /// <summary>
    /// A lease seen held by another instance until <c>ExpiresAt</c>; <c>HandedOff</c> when that instance has just
    /// released it; <c>Malformed</c> when its value could not be parsed (looked at again once per TTL).
    /// <c>HolderBeat</c>: the holder's heartbeat expiry (server ms) when learnt, 0 if unknown; <c>LearnedAt</c>: when.
    /// </summary>
    private readonly record struct Foreign(string Holder, long ExpiresAt, bool HandedOff = false, bool Malformed = false)
    {
        public long HolderBeat { get; init; }

        public long LearnedAt { get; init; }
    }
}
