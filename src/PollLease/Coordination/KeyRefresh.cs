namespace PollLease.Coordination;

/// <summary>One lease this instance holds, as <see cref="LeaseTable"/> keeps it.</summary>
internal sealed class HeldEntry(string sessionId, long token, DateTimeOffset acquiredAt)
{
    public string SessionId { get; } = sessionId;

    public long Token { get; } = token;

    public DateTimeOffset AcquiredAt { get; } = acquiredAt;

    /// <summary>Send time of the last request that moved the key's safety expiry on.</summary>
    public long KeyRefreshed { get; set; }

    /// <summary>Until when the key's safety expiry certainly keeps it in Redis (send time + key TTL - margin).</summary>
    public long KeyValidUntil { get; set; }

    /// <summary>When this instance last started a poll of it (null: never).</summary>
    public long? LastPoll { get; set; }

    /// <summary>When the last start recorded in Redis began (null: none yet).</summary>
    public long? Recorded { get; set; }

    /// <summary>When the session's previous poll (by any owner) started, read at acquisition (null: unknown).</summary>
    public long? PreviousPoll { get; set; }
}

/// <summary>
/// Which held leases a cycle refreshes: the safety expiry of every key is moved on once per refresh period, a slice
/// per cycle in round-robin order (never more than <see cref="LeaseTable.MaxRefreshPerCycle"/>), plus the leases
/// whose poll start must be recorded. Not thread-safe: <see cref="LeaseTable"/> calls it under its lock.
/// </summary>
internal sealed class KeyRefresh(long refreshPeriod, double cyclesPerRefresh, int cap)
{
    private readonly Queue<(string Session, long Token)> _rotation = new();
    private readonly HashSet<string> _reports = new(StringComparer.Ordinal);

    public void Add(string session, long token) => _rotation.Enqueue((session, token));

    /// <summary>Record this lease's last poll start with the next cycle.</summary>
    public void Report(string session) => _reports.Add(session);

    public void Forget(string session) => _reports.Remove(session);

    public void Clear()
    {
        _rotation.Clear();
        _reports.Clear();
    }

    /// <summary>The next slice: reports first, then enough of the rotation that every key comes round once per
    /// period, more while the head is overdue (cycles ran slower than planned), never more than the cap.</summary>
    public List<HeldLease> Next(IReadOnlyDictionary<string, HeldEntry> held, long now, Func<long?, long> toServerMs)
    {
        var refresh = new List<HeldLease>();
        var picked = new HashSet<string>(StringComparer.Ordinal);
        foreach (var session in _reports)
        {
            // A lease given up since its poll start was reported (lost, released) has nothing left to record.
            if (held.TryGetValue(session, out var e))
            {
                refresh.Add(new HeldLease(session, e.Token, toServerMs(e.LastPoll)));
                picked.Add(session);
            }
        }
        _reports.Clear(); // sent; a failed request reports them again
        var quota = picked.Count + Math.Min(cap, (int)Math.Ceiling(held.Count / cyclesPerRefresh));
        var budget = _rotation.Count;
        while (budget-- > 0 && refresh.Count < cap && _rotation.TryPeek(out var head))
        {
            if (!held.TryGetValue(head.Session, out var e) || e.Token != head.Token)
            {
                _rotation.Dequeue(); // released or lost since: its turn is over
                continue;
            }
            if (picked.Count >= quota && e.KeyRefreshed + refreshPeriod > now)
            {
                break;
            }
            _rotation.Enqueue(_rotation.Dequeue());
            if (picked.Add(head.Session))
            {
                refresh.Add(new HeldLease(head.Session, e.Token));
            }
        }
        return refresh;
    }

    /// <summary>The held lease whose key was refreshed least recently (stale turns are dropped on the way); null when none.</summary>
    public HeldEntry? Head(IReadOnlyDictionary<string, HeldEntry> held)
    {
        while (_rotation.TryPeek(out var head))
        {
            if (held.TryGetValue(head.Session, out var e) && e.Token == head.Token)
            {
                return e;
            }
            _rotation.Dequeue();
        }
        return null;
    }

    /// <summary>True when the longest-waiting key is due now (refreshes fell behind: run the next cycle at once).</summary>
    public bool Overdue(IReadOnlyDictionary<string, HeldEntry> held, long now) => Head(held) is { } e && e.KeyRefreshed + refreshPeriod <= now;
}
