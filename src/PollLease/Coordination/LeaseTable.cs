using PollLease.Assignment;

namespace PollLease.Coordination;

/// <summary>
/// What one instance knows about leases, with no I/O: the leases it holds and their deadlines, what it has learnt of
/// other instances' leases, and the live instances. It builds each cycle's request from a plan and applies the reply
/// into lease events. Times are <see cref="TimeProvider.GetTimestamp"/> values. All members are thread-safe.
/// </summary>
/// <remarks>
/// Deadlines: every held lease hangs on this instance's heartbeat, so one deadline covers them all:
/// <c>send time of the last successful heartbeat + LeaseTtl - SafetyMargin</c>. The server sets the heartbeat to its
/// own time at execution (later than the send) + LeaseTtl, so the local deadline always falls first. A lease is
/// also bounded by its key's safety expiry (refreshed on a rolling slice), which in normal running is far away.
/// </remarks>
internal sealed class LeaseTable
{
    /// <summary>Most leases whose safety expiry one cycle moves on: bounds the script's length whatever is held.</summary>
    internal const int MaxRefreshPerCycle = 1000;

    /// <summary>Most sessions one request tries to acquire; the rest follow in the next cycles, run at once.</summary>
    internal const int MaxAcquirePerCycle = 250;

    private readonly object _lock = new();
    private readonly string _self;
    private readonly TimeProvider _time;
    private readonly long _validity;
    private readonly long _keyValidity;
    private readonly long _recheck;
    private readonly long _handoffWait;
    private readonly Dictionary<string, HeldEntry> _held = new(StringComparer.Ordinal);
    private readonly KeyRefresh _refresh;
    private readonly RequestRetries _retries = new();
    private readonly List<LeaseEvent> _pending = [];
    private bool _closed;
    private bool _acquireBacklog;
    private readonly ForeignLeases _foreign;
    private long _beatValidUntil;
    private long _quarantineUntil;
    private bool _uncertain;
    private long _anchorServerMs;
    private long _anchorLocal;
    private bool _anchored;
    private FleetBeats _beats = FleetBeats.None;
    private readonly TimeSpan _beatLifetime;

    /// <param name="self">This instance's id.</param>
    /// <param name="options">Validated options.</param>
    /// <param name="time">Clock.</param>
    /// <param name="malformed">Told of a lease value that is no <c>owner|token</c> (session, value).</param>
    public LeaseTable(string self, PollLeaseOptions options, TimeProvider time, Action<string, string>? malformed = null)
    {
        _self = self;
        _time = time;
        // A heartbeat's score is the server time of the beat + LeaseTtl: its age is LeaseTtl less what it has left.
        _beatLifetime = options.LeaseTtl;
        _validity = Ticks(options.LeaseTtl - options.SafetyMargin);
        var keyTtl = LeaseStore.KeyTtl(options);
        _keyValidity = Ticks(keyTtl - options.SafetyMargin);
        _recheck = Ticks(2 * options.LeaseTtl);
        _handoffWait = Ticks(options.RetryInterval);
        _refresh = new KeyRefresh(Ticks(keyTtl / 2), (keyTtl / 2) / options.CycleInterval, MaxRefreshPerCycle);
        _foreign = new ForeignLeases(time, options.LeaseTtl, malformed);
    }

    /// <summary>Live instances as of the last answer (or event), sorted.</summary>
    public IReadOnlyList<string> LiveNodes => _foreign.Live;

    public int Count => Locked(() => _held.Count);

    public LeaseState State(string session, long now) => Locked(() => _held.TryGetValue(session, out var e) ? StateOf(e, now) : LeaseState.None);

    /// <summary>The lease when held and not lost.</summary>
    public bool TryGet(string session, long now, out LeaseSnapshot lease)
    {
        lock (_lock)
        {
            if (_held.TryGetValue(session, out var e) && StateOf(e, now) is LeaseState.Owned or LeaseState.Uncertain)
            {
                lease = Snapshot(e, now);
                return true;
            }
        }
        lease = default;
        return false;
    }

    public IReadOnlyList<LeaseSnapshot> Held(long now) => Locked(() => _held.Values
        .Where(e => StateOf(e, now) is LeaseState.Owned or LeaseState.Uncertain)
        .Select(e => Snapshot(e, now)).OrderBy(s => s.SessionId, StringComparer.Ordinal).ToArray());

    /// <summary>Drops every lease whose deadline passed (reason deadline).</summary>
    public void SweepDeadlines(long now, List<LeaseEvent> events)
    {
        lock (_lock)
        {
            events.AddRange(_pending);
            _pending.Clear();
            if (now < _beatValidUntil && (_refresh.Head(_held) is not { } oldest || now < oldest.KeyValidUntil))
            {
                return; // one heartbeat deadline for all, and the least recently refreshed key is the first to run out
            }
            foreach (var e in _held.Values.Where(e => StateOf(e, now) == LeaseState.Lost).ToList())
            {
                _held.Remove(e.SessionId);
                events.Add(Event(LeaseEventKind.Lost, e.SessionId, e.Token, LeaseReasons.Deadline));
            }
        }
    }

    /// <summary>The planner's inputs as of <paramref name="now"/>.</summary>
    public LeasePlanInput PlanInput(IReadOnlyCollection<string> active, long now)
    {
        lock (_lock)
        {
            var (elsewhere, handedOff, orphaned) = _foreign.Classify(now, _recheck);
            // The heartbeat ages let the planner skip instances that are registered but silent (a cut-off link).
            return new LeasePlanInput(_self, _foreign.Live, active, _held.Keys.ToHashSet(StringComparer.Ordinal), elsewhere, handedOff, orphaned)
            {
                HeartbeatAge = _beats.Ages,
                ViewAge = _beats.ReadAt == 0 ? TimeSpan.MaxValue : _time.GetElapsedTime(_beats.ReadAt, now),
            };
        }
    }

    /// <summary>
    /// The request for one cycle: the plan's acquisitions and releases (released leases stop counting as held now,
    /// before anything is sent), plus the next slice of safety refreshes and any poll starts to record.
    /// </summary>
    public CycleRequest BuildRequest(HeartbeatMode mode, LeasePlan plan, List<LeaseEvent> events)
    {
        lock (_lock)
        {
            var release = new List<HeldLease>();
            foreach (var (session, reason) in plan.Release)
            {
                if (_held.Remove(session, out var e))
                {
                    _refresh.Forget(session);
                    release.Add(new HeldLease(session, e.Token, ToServerMs(e.LastPoll)));
                    events.Add(Event(LeaseEventKind.Released, session, e.Token, reason));
                }
            }
            _retries.AddReleases(release);
            // A long acquire list is split over several requests, so no script runs long whatever is planned.
            var acquire = _retries.Acquire(plan.Acquire, _held.ContainsKey);
            _acquireBacklog = acquire.Count > MaxAcquirePerCycle;
            acquire = _acquireBacklog ? acquire.Take(MaxAcquirePerCycle).ToArray() : acquire;
            return new CycleRequest(mode, _refresh.Next(_held, _time.GetTimestamp(), ToServerMs), acquire, release);
        }
    }

    /// <summary>
    /// Takes every held lease out for release (the instance is stopping; releases still unconfirmed included); they stop
    /// counting as owned now, and answers still in flight are ignored until <see cref="Open"/>.
    /// </summary>
    public IReadOnlyList<HeldLease> TakeAll(string reason, List<LeaseEvent> events)
    {
        lock (_lock)
        {
            var all = _held.Values.Select(e => new HeldLease(e.SessionId, e.Token, ToServerMs(e.LastPoll))).ToList();
            events.AddRange(all.Select(h => Event(LeaseEventKind.Released, h.SessionId, h.Token, reason)));
            _held.Clear();
            _refresh.Clear();
            _retries.AddReleases(all, clear: true);
            _closed = true;
            return all;
        }
    }

    /// <summary>
    /// <paramref name="request"/> failed (no answer, an error, or too late): every held lease becomes Uncertain (no new
    /// polls) until a heartbeat succeeds again, and its acquisitions and releases are sent again with the next request.
    /// </summary>
    public void Failed(CycleRequest request, List<LeaseEvent> events)
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _retries.Failed(request);
            foreach (var item in request.Refresh.Where(r => r.PollStartMs != 0 && _held.TryGetValue(r.SessionId, out var e) && e.Token == r.Token))
            {
                _refresh.Report(item.SessionId); // not recorded: send it again
            }
            if (!_uncertain)
            {
                _uncertain = true;
                events.AddRange(_held.Values.Select(e => Event(LeaseEventKind.Uncertain, e.SessionId, e.Token, LeaseReasons.RenewFailed)));
            }
        }
    }

    /// <summary>Applies the reply of <paramref name="request"/>, sent at <paramref name="sent"/>.</summary>
    public CycleApplied Apply(CycleRequest request, CycleResponse response, long sent, List<LeaseEvent> events)
    {
        var now = _time.GetTimestamp();
        lock (_lock)
        {
            if (_closed)
            {
                // The instance stopped while this was in flight: its stop request sweeps whatever this acquired.
                return new CycleApplied(0, 0, 0, false, []);
            }
            _retries.Answered(request);
            _anchorServerMs = response.ServerTimeMs;
            _anchorLocal = sent;
            _anchored = true;
            var dropped = _foreign.SetLive(response.LiveNodes);
            _beats = FleetBeats.From(response, _beatLifetime, sent);
            _foreign.FollowHolders(response.HeartbeatExpiry);
            _quarantineUntil = response.Quarantine > TimeSpan.Zero ? sent + Ticks(response.Quarantine) : 0;
            var lost = events.Count(e => e.Kind == LeaseEventKind.Lost);
            if (response.Lapsed)
            {
                // Our heartbeat had expired (or Redis lost it): others may have taken any lease; the script deleted them.
                foreach (var e in _held.Values)
                {
                    events.Add(Event(LeaseEventKind.Lost, e.SessionId, e.Token, LeaseReasons.HeartbeatLapsed));
                }
                _held.Clear();
                _refresh.Clear();
            }
            else if (request.Heartbeat is HeartbeatMode.Beat or HeartbeatMode.Register)
            {
                // A heartbeat that returns after the deadline cannot revive leases: others may already hold them.
                SweepDeadlines(now, events);
                var recovered = _uncertain;
                _uncertain = false;
                if (recovered)
                {
                    events.AddRange(_held.Values.Select(e => Event(LeaseEventKind.Renewed, e.SessionId, e.Token, null)));
                }
            }
            var renewed = _held.Count;
            if (request.Heartbeat is HeartbeatMode.Beat or HeartbeatMode.Register)
            {
                _beatValidUntil = Math.Max(_beatValidUntil, sent + _validity);
            }
            ApplyRefresh(request.Refresh, response.RefreshFailed, sent, events);
            var (acquired, failovers) = ApplyAcquired(request.Acquire, response, sent, events);
            return new CycleApplied(acquired, renewed, events.Count(e => e.Kind == LeaseEventKind.Lost) - lost, dropped, failovers);
        }
    }

    /// <summary>
    /// The strict check found another value (<paramref name="found"/>) in the lease's key: it stops counting as owned
    /// now, and its Lost event comes with the next cycle's.
    /// </summary>
    public void Taken(string session, long token, string found) => Locked(() =>
    {
        if (_held.TryGetValue(session, out var e) && e.Token == token && _held.Remove(session))
        {
            _pending.Add(Event(LeaseEventKind.Lost, session, token, found.Length == 0 ? LeaseReasons.Expired : LeaseReasons.Taken));
        }
        return true;
    });

    /// <summary>Accepts answers again (the instance starts).</summary>
    public void Open() => Locked(() => _closed = false);

    /// <summary>
    /// A poll of <paramref name="session"/> under <paramref name="token"/> started <paramref name="at"/>. With
    /// <paramref name="record"/> (the cadence's phase moved) the start goes to Redis with the next cycle; otherwise only
    /// with a release, as the next owner continues the phase it last read.
    /// </summary>
    public void PollStarted(string session, long token, long at, bool record)
    {
        lock (_lock)
        {
            if (_held.TryGetValue(session, out var e) && e.Token == token)
            {
                e.LastPoll = at;
                // The recorded start has the keys' safety expiry too: recorded again well before it could lapse.
                if (record || e.Recorded is not { } recorded || at - recorded > _keyValidity / 2)
                {
                    e.Recorded = at;
                    _refresh.Report(session);
                }
            }
        }
    }

    /// <summary>When the session's previous poll started (any owner), as read when this lease was acquired.</summary>
    public bool TryGetPreviousPoll(string session, long token, out long at)
    {
        lock (_lock)
        {
            var previous = _held.TryGetValue(session, out var e) && e.Token == token ? e.PreviousPoll : null;
            at = previous.GetValueOrDefault();
            return previous.HasValue;
        }
    }

    /// <summary>
    /// Another instance announced on the events channel that it released <paramref name="sessions"/> (left to their
    /// preferred owner for a moment), joined, left, or lost its heartbeat (its leases were deleted: forget them).
    /// </summary>
    public void OnFleetEvent(FleetEvents.Kind kind, string sender, IEnumerable<string> sessions, long now) =>
        Locked(() => _foreign.OnFleetEvent(kind, sender, sessions, now, now + _handoffWait));

    /// <summary>How long to sleep: the sooner of <paramref name="delay"/>, the heartbeat deadline (so Lost is reported on
    /// time), the earliest foreign expiry (takeover then) and, when refreshes fell behind, now.</summary>
    public TimeSpan NextWake(long now, TimeSpan delay)
    {
        var earliest = now + Ticks(delay);
        lock (_lock)
        {
            if (_held.Count > 0)
            {
                earliest = Math.Min(earliest, _beatValidUntil);
            }
            earliest = Math.Min(earliest, _foreign.EarliestExpiry(now));
            // Redis lost data: acquisitions resume when the quarantine ends.
            earliest = _quarantineUntil > now ? Math.Min(earliest, _quarantineUntil) : earliest;
            if (_acquireBacklog || _refresh.Overdue(_held, now))
            {
                earliest = now;
            }
        }
        return _time.GetElapsedTime(now, Math.Max(earliest, now));
    }

    private void ApplyRefresh(IReadOnlyList<HeldLease> refresh, string?[] failed, long sent, List<LeaseEvent> events)
    {
        for (var i = 0; i < refresh.Count; i++)
        {
            var item = refresh[i];
            if (!_held.TryGetValue(item.SessionId, out var e) || e.Token != item.Token)
            {
                continue;
            }
            if (failed[i] is null)
            {
                e.KeyRefreshed = sent;
                e.KeyValidUntil = sent + _keyValidity;
                continue;
            }
            _held.Remove(item.SessionId);
            _refresh.Forget(item.SessionId);
            var found = failed[i]!;
            if (found.Length > 0)
            {
                _foreign.Learn(item.SessionId, found, _time.GetTimestamp(), TimeSpan.Zero, 0, sent);
            }
            events.Add(Event(LeaseEventKind.Lost, item.SessionId, item.Token, found.Length == 0 ? LeaseReasons.Expired : LeaseReasons.Taken));
        }
    }

    private (int Acquired, List<(string Session, long Token, string From)> Failovers) ApplyAcquired(
        IReadOnlyList<string> acquire, CycleResponse response, long sent, List<LeaseEvent> events)
    {
        var acquired = 0;
        var failovers = new List<(string, long, string)>();
        var now = _time.GetTimestamp();
        for (var i = 0; i < acquire.Count; i++)
        {
            var session = acquire[i];
            var outcome = response.Acquire[i];
            if (outcome.Token == 0 && outcome.Holder is null)
            {
                continue; // not tried: the data-loss quarantine
            }
            if (outcome.Token == 0)
            {
                _foreign.Learn(session, outcome.Holder ?? "", now, outcome.HolderRemaining, response.HeartbeatExpiry.GetValueOrDefault(Holder(outcome.Holder)), sent);
                continue;
            }
            if (_foreign.TakeFailover(session, _self, sent) is { } from)
            {
                failovers.Add((session, outcome.Token, from));
            }
            _held[session] = new HeldEntry(session, outcome.Token, _time.GetUtcNow())
            {
                KeyRefreshed = sent,
                KeyValidUntil = sent + _keyValidity,
                PreviousPoll = outcome.PreviousPollMs > 0 ? ToLocal(outcome.PreviousPollMs) : null,
            };
            _refresh.Add(session, outcome.Token);
            acquired++;
            events.Add(Event(LeaseEventKind.Acquired, session, outcome.Token, null));
        }
        return (acquired, failovers);
    }

    private static string Holder(string? value) => LeaseValue.TryParse(value, out var owner, out _) ? owner : value ?? "";

    private T Locked<T>(Func<T> read)
    {
        lock (_lock)
        {
            return read();
        }
    }

    private LeaseState StateOf(HeldEntry e, long now) =>
        now >= Math.Min(_beatValidUntil, e.KeyValidUntil) ? LeaseState.Lost : _uncertain ? LeaseState.Uncertain : LeaseState.Owned;

    private LeaseSnapshot Snapshot(HeldEntry e, long now) =>
        new(e.SessionId, e.Token, StateOf(e, now), _time.GetElapsedTime(now, Math.Max(now, Math.Min(_beatValidUntil, e.KeyValidUntil))), e.AcquiredAt);

    private LeaseEvent Event(LeaseEventKind kind, string session, long token, string? reason) =>
        new(kind, _self, session, token, reason, _time.GetUtcNow());

    /// <summary>Server ms of a local timestamp, from the last answer's server time and send time; 0 for 0 or no answer yet.</summary>
    private long ToServerMs(long? local) =>
        local is not { } at || !_anchored ? 0 : _anchorServerMs + (long)_time.GetElapsedTime(_anchorLocal, at).TotalMilliseconds;

    private long ToLocal(long serverMs) => _anchorLocal + Ticks(TimeSpan.FromMilliseconds(serverMs - _anchorServerMs));

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);
}
