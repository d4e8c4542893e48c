using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PollLease.Assignment;
using PollLease.Sessions;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// One instance's view of the fleet and of the leases it holds. Each cycle is one Redis round trip that
/// heartbeats, renews every owned lease, acquires and releases what the planner chose, and reads back the
/// live instances: O(1) round trips whatever the number of leases.
/// </summary>
/// <remarks>
/// Safety: a lease counts as owned only until <c>send time of the last successful renew + LeaseTtl -
/// SafetyMargin</c> on a monotonic clock. A failed renew makes it <see cref="LeaseState.Uncertain"/> (no new
/// polls); the deadline makes it <see cref="LeaseState.Lost"/>. With Redis unreachable nothing stays owned
/// past its deadline, and the instance recovers by itself when Redis returns. All members are thread-safe.
/// </remarks>
public sealed class LeaseManager : IAsyncDisposable, ILeaseView
{
    private readonly LeaseStore _store;
    private readonly PollLeaseOptions _options;
    private readonly ISessionDirectory _sessions;
    private readonly ILeasePlanner _planner;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly LeaseMetrics _metrics;
    private readonly IConnectionMultiplexer _redis;
    private readonly string _nodeMetadata;
    private readonly long _validityTicks;
    private readonly long _recheckTicks;

    private static readonly TimeSpan MinForeignWait = TimeSpan.FromMilliseconds(3);

    private readonly object _lock = new();
    private readonly Dictionary<string, Entry> _held = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Foreign> _foreign = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _cycleGate = new(1, 1);
    private readonly WakeSignal _wake = new();

    /// <summary>How often an instance checks the published assignment's version in case it missed the event.</summary>
    internal static readonly TimeSpan AssignmentCheckInterval = TimeSpan.FromSeconds(30);

    private readonly AssignmentFollower? _follower;

    private IReadOnlyList<string> _liveNodes = [];
    private FleetBeats _beats = FleetBeats.None;
    private IReadOnlyCollection<string> _activeSessions = new HashSet<string>(StringComparer.Ordinal);
    private IReadOnlyCollection<string>? _activeSource;
    private string _catalogVersion = "";
    private bool _registered;
    private int _consecutiveFailures;
    private CancellationTokenSource? _loopCts;
    private Task? _loop;
    private ChannelMessageQueue? _subscription;

    /// <summary>Creates a lease manager. Nothing touches Redis until <see cref="StartAsync"/> or a cycle runs.</summary>
    /// <param name="redis">The shared connection (AbortOnConnectFail=false so it reconnects by itself).</param>
    /// <param name="options">Validated options; they are checked again here.</param>
    /// <param name="sessions">Where active session ids come from.</param>
    /// <param name="timeProvider">Clock (monotonic timestamps for deadlines); <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="loggerFactory">Logging; none by default.</param>
    /// <param name="meterFactory">Metrics; a private meter by default.</param>
    public LeaseManager(
        IConnectionMultiplexer redis,
        PollLeaseOptions options,
        ISessionDirectory sessions,
        TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null,
        IMeterFactory? meterFactory = null)
        : this(redis, options, sessions, DefaultPlanner(options, timeProvider, loggerFactory), timeProvider, loggerFactory, meterFactory)
    {
    }

    internal LeaseManager(
        IConnectionMultiplexer redis,
        PollLeaseOptions options,
        ISessionDirectory sessions,
        ILeasePlanner planner,
        TimeProvider? timeProvider,
        ILoggerFactory? loggerFactory,
        IMeterFactory? meterFactory)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(sessions);
        PollLeaseOptionsValidator.ThrowIfInvalid(options);
        _redis = redis;
        _options = options;
        _sessions = sessions;
        _planner = planner;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollLease.Leases");
        InstanceId = InstanceIdentity.Resolve(options.InstanceId, _time);
        Keys = new RedisKeys(options.KeyPrefix);
        _store = new LeaseStore(redis, Keys, InstanceId, options);
        if (planner is BalancedPlanner balanced)
        {
            _follower = new AssignmentFollower(new AssignmentStore(redis, Keys), published =>
            {
                balanced.UseBase(published);
                _wake.Set();
            }, AssignmentCheckInterval, options.OperationTimeout, _time, _logger, InstanceId);
        }
        _metrics = new LeaseMetrics(meterFactory, InstanceId, () => { lock (_lock) { return _held.Count; } });
        _validityTicks = (long)((options.LeaseTtl - options.SafetyMargin).TotalSeconds * _time.TimestampFrequency);
        _recheckTicks = (long)(2 * options.LeaseTtl.TotalSeconds * _time.TimestampFrequency);
        _nodeMetadata = JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["id"] = InstanceId,
            ["host"] = Environment.MachineName,
            ["pid"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["started"] = _time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            ["azureInstanceId"] = Environment.GetEnvironmentVariable("WEBSITE_INSTANCE_ID") ?? "",
        });
    }

    /// <summary>How early a foreign lease counts as expired: wake-ups timed for an expiry can fire a hair early.</summary>
    private long ExpiryTolerance => (long)(MinForeignWait.TotalSeconds * 2 * _time.TimestampFrequency);

    private static BalancedPlanner DefaultPlanner(PollLeaseOptions options, TimeProvider? time, ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new BalancedPlanner(options.BalanceEpsilon, time ?? TimeProvider.System, PlannerTimings.From(options), loggerFactory?.CreateLogger("PollLease.Assignment"));
    }

    /// <summary>Raised for every lease change. Handlers run on the cycle's thread; exceptions are logged and ignored.</summary>
    public event EventHandler<LeaseEvent>? LeaseChanged;

    /// <summary>This instance's id.</summary>
    public string InstanceId { get; }

    /// <summary>The options in force.</summary>
    public PollLeaseOptions Options => _options;

    internal RedisKeys Keys { get; }

    /// <summary>Live instance ids as of the last successful cycle (sorted by Redis).</summary>
    public IReadOnlyList<string> LiveNodes => Volatile.Read(ref _liveNodes);

    /// <summary>
    /// The balanced assignment this instance planned its last cycle with (live instances x active sessions).
    /// Every instance with the same view computes the same one.
    /// </summary>
    public BalancedAssignment Assignment => _planner is BalancedPlanner balanced
        ? balanced.Current
        : BalancedAssignment.Compute(LiveNodes.Append(InstanceId), ActiveSessions, _options.BalanceEpsilon);

    /// <summary>The instance the session is assigned to in <see cref="Assignment"/>, or null (seed T031).</summary>
    /// <param name="sessionId">The session.</param>
    public string? PreferredOwner(string sessionId) => Assignment.PreferredOwner(sessionId);

    /// <summary>True when this instance is the session's assigned instance (seed T032).</summary>
    /// <param name="sessionId">The session.</param>
    public bool IsPreferredOwner(string sessionId) => Assignment.IsPreferredOwner(sessionId, InstanceId);

    /// <summary>Active session ids as of the last cycle.</summary>
    public IReadOnlyCollection<string> ActiveSessions => Volatile.Read(ref _activeSessions);

    /// <summary>True between <see cref="StartAsync"/> and <see cref="StopAsync"/>.</summary>
    public bool IsRunning => _loop is not null;

    /// <summary>
    /// True when this instance holds the session's lease and it is locally valid (state Owned and before its
    /// deadline), from the cached state; no round trip (seed T013).
    /// </summary>
    /// <param name="sessionId">The session.</param>
    public bool IsOwned(string sessionId) => GetState(sessionId) == LeaseState.Owned;

    /// <summary>The lease's state as this instance sees it now.</summary>
    /// <param name="sessionId">The session.</param>
    public LeaseState GetState(string sessionId)
    {
        var now = _time.GetTimestamp();
        lock (_lock)
        {
            return _held.TryGetValue(sessionId, out var e) ? e.EffectiveState(now) : LeaseState.None;
        }
    }

    /// <summary>The lease of <paramref name="sessionId"/> when this instance holds it (Owned or Uncertain).</summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="lease">The lease when found.</param>
    public bool TryGetLease(string sessionId, out LeaseSnapshot lease)
    {
        var now = _time.GetTimestamp();
        lock (_lock)
        {
            if (_held.TryGetValue(sessionId, out var e) && e.EffectiveState(now) is LeaseState.Owned or LeaseState.Uncertain)
            {
                lease = Snapshot(e, now);
                return true;
            }
        }
        lease = default;
        return false;
    }

    /// <summary>Every lease this instance holds and has not lost (seed T014).</summary>
    public IReadOnlyList<LeaseSnapshot> OwnedSessions()
    {
        var now = _time.GetTimestamp();
        lock (_lock)
        {
            return _held.Values.Where(e => e.EffectiveState(now) is LeaseState.Owned or LeaseState.Uncertain)
                .Select(e => Snapshot(e, now)).OrderBy(s => s.SessionId, StringComparer.Ordinal).ToArray();
        }
    }

    /// <summary>
    /// Checks ownership against Redis right now (seed T026): true only when the lease is locally Owned and Redis
    /// still holds this instance's value and token. Use it before critical polls; it costs one round trip.
    /// </summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    public async Task<bool> IsOwnedStrictAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        if (!TryGetLease(sessionId, out var lease) || lease.State != LeaseState.Owned)
        {
            return false;
        }
        var value = await _store.GetLeaseValueAsync(sessionId).WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
        return value == LeaseValue.Format(InstanceId, lease.Token) && IsOwned(sessionId);
    }

    /// <summary>
    /// Registers the instance (one round trip that also takes its first leases), subscribes to fleet events and
    /// starts the cycle loop. Redis being unreachable does not fail the start: the loop keeps trying.
    /// </summary>
    /// <param name="cancellationToken">Cancels the start.</param>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_loop is not null)
        {
            throw new InvalidOperationException($"Lease manager {InstanceId} is already running.");
        }
        LeaseLog.Registered(_logger, InstanceId, _options.KeyPrefix, _options.LeaseTtl, _options.RenewInterval);
        try
        {
            _subscription = await _redis.GetSubscriber().SubscribeAsync(Keys.Events).ConfigureAwait(false);
            _subscription.OnMessage(OnFleetEvent);
        }
        catch (RedisException e)
        {
            LeaseLog.CycleFailed(_logger, e, InstanceId, 0);
        }
        if (_follower is not null)
        {
            // The first plan already follows the fleet's published assignment: a joining instance takes only its share.
            await _follower.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        await RunCycleAsync(cancellationToken).ConfigureAwait(false);
        var cts = new CancellationTokenSource();
        _loopCts = cts;
        _loop = Task.Run(() => LoopAsync(cts.Token), CancellationToken.None);
    }

    /// <summary>
    /// Stops the loop, then releases every held lease and deregisters in one round trip bounded by
    /// <see cref="PollLeaseOptions.ShutdownTimeout"/>. Leases stop counting as owned before the request is sent.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait (the leases then expire by their TTL).</param>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var loop = _loop;
        var cts = _loopCts;
        _loop = null;
        _loopCts = null;
        if (cts is not null)
        {
            await cts.CancelAsync().ConfigureAwait(false);
        }
        if (loop is not null)
        {
            await loop.ConfigureAwait(false);
        }
        cts?.Dispose();
        if (_follower is not null)
        {
            await _follower.StopAsync().ConfigureAwait(false);
        }
        if (_subscription is not null)
        {
            try
            {
                await _subscription.UnsubscribeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or ObjectDisposedException)
            {
                LeaseLog.CycleFailed(_logger, e, InstanceId, 0);
            }
            _subscription = null;
        }

        await _cycleGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        List<(string SessionId, long Token)> release;
        try
        {
            lock (_lock)
            {
                release = _held.Values.Select(e => (e.SessionId, e.Token)).ToList();
                _held.Clear();
            }
            var events = release.Select(r => Event(LeaseEventKind.Released, r.SessionId, r.Token, LeaseReasons.Shutdown)).ToList();
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var response = await _store.RunAsync(new CycleRequest(HeartbeatMode.Deregister, [], [], release), _nodeMetadata)
                    .WaitAsync(_options.ShutdownTimeout, _time, timeout.Token).ConfigureAwait(false);
                var count = response.Released.Count(x => x);
                _metrics.Released(LeaseReasons.Shutdown, count);
                foreach (var (session, _) in release)
                {
                    LeaseLog.Released(_logger, InstanceId, session, LeaseReasons.Shutdown);
                }
                _registered = false;
                LeaseLog.Stopped(_logger, InstanceId, count, true);
            }
            catch (Exception e)
            {
                // Whatever failed (Redis gone, timeout, disposed connection), the leases are already given up
                // locally; they expire in Redis by their TTL.
                LeaseLog.StopFailed(_logger, e, InstanceId, release.Count);
                if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
            }
            Raise(events);
        }
        finally
        {
            _cycleGate.Release();
        }
    }

    /// <summary>
    /// Acquires one session's lease now if nobody holds it (one round trip). The cycle loop does this on its own;
    /// call it for an immediate takeover.
    /// </summary>
    /// <param name="sessionId">The session (validated).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The token when acquired; otherwise the current holder.</returns>
    public async Task<LeaseAcquireResult> TryAcquireAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        await _cycleGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (TryGetLease(sessionId, out var existing) && existing.State == LeaseState.Owned)
            {
                return new LeaseAcquireResult(true, existing.Token, InstanceId);
            }
            var sent = _time.GetTimestamp();
            var response = await _store.RunAsync(new CycleRequest(HeartbeatMode.None, [], [sessionId], []), _nodeMetadata)
                .WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
            var events = new List<LeaseEvent>();
            ApplyAcquired([sessionId], response, sent, events);
            Raise(events);
            var outcome = response.Acquire[0];
            return outcome.Token > 0
                ? new LeaseAcquireResult(true, outcome.Token, InstanceId)
                : new LeaseAcquireResult(false, 0, HolderId(sessionId, outcome.Holder));
        }
        finally
        {
            _cycleGate.Release();
        }
    }

    /// <summary>
    /// Releases one lease held by this instance (compare owner and token, then delete) and announces it on the
    /// events channel. The lease stops counting as owned before the request is sent.
    /// </summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="reason">Why (see <see cref="LeaseReasons"/>); logged and tagged on metrics.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when Redis held this instance's lease and deleted it.</returns>
    public async Task<bool> ReleaseAsync(string sessionId, string reason = LeaseReasons.Requested, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        await _cycleGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var events = new List<LeaseEvent>();
            var release = TakeForRelease([(sessionId, reason)], events);
            if (release.Count == 0)
            {
                return false;
            }
            var response = await _store.RunAsync(new CycleRequest(HeartbeatMode.None, [], [], release.Select(r => (r.SessionId, r.Token)).ToList()), _nodeMetadata)
                .WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
            _metrics.Released(reason, response.Released.Count(x => x));
            Raise(events);
            return response.Released[0];
        }
        finally
        {
            _cycleGate.Release();
        }
    }

    /// <summary>
    /// Runs one lease cycle now: heartbeat, renew all held leases, acquire and release what the planner decides,
    /// refresh the live-node view, all in one round trip. Cycles never overlap: a call waits for a running one.
    /// Redis failures do not throw; they are logged, counted and reported in the result.
    /// </summary>
    /// <param name="cancellationToken">Cancels the cycle.</param>
    public async Task<LeaseCycleResult> RunCycleAsync(CancellationToken cancellationToken = default) =>
        (await RunGatedCycleAsync(onlyIfRunning: false, cancellationToken).ConfigureAwait(false))!;

    /// <summary>
    /// Runs one cycle now if the manager is running (started and not stopping), under the same gate as every other
    /// cycle; returns null otherwise. For triggers from outside the loop (timer functions): a trigger that arrives
    /// while the host stops must not register the instance again after it has deregistered.
    /// </summary>
    internal Task<LeaseCycleResult?> RunCycleIfRunningAsync(CancellationToken cancellationToken) =>
        RunGatedCycleAsync(onlyIfRunning: true, cancellationToken);

    private async Task<LeaseCycleResult?> RunGatedCycleAsync(bool onlyIfRunning, CancellationToken cancellationToken)
    {
        await _cycleGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // StopAsync clears _loop before it takes the gate, so a trigger queued behind its release sees it here.
            return onlyIfRunning && _loop is null ? null : await RunCycleCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _cycleGate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_loop is not null)
        {
            await StopAsync().ConfigureAwait(false);
        }
        _cycleGate.Dispose();
    }

    private async Task<LeaseCycleResult> RunCycleCoreAsync(CancellationToken cancellationToken)
    {
        using var activity = PollLeaseTelemetry.ActivitySource.StartActivity("polllease.cycle");
        activity?.SetTag("polllease.instance", InstanceId);
        var events = new List<LeaseEvent>();
        var started = _time.GetTimestamp();
        SweepDeadlines(started, events);

        try
        {
            var active = await _sessions.GetActiveSessionIdsAsync(_catalogVersion, cancellationToken).ConfigureAwait(false);
            if (!ReferenceEquals(active, _activeSource))
            {
                // The planner looks every session up each cycle: hand it a set, built once per change of the
                // directory's answer rather than once per cycle (100,000 sessions: ~8 ms a cycle saved).
                _activeSource = active;
                Volatile.Write(ref _activeSessions, active as IReadOnlySet<string> is not null ? active : new HashSet<string>(active, StringComparer.Ordinal));
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LeaseLog.SessionSourceFailed(_logger, e, InstanceId);
        }

        if (!_registered && !await RegisterAsync(cancellationToken).ConfigureAwait(false))
        {
            return new LeaseCycleResult(false, 0, 0, 0, 0, 0, TimeSpan.Zero);
        }

        LeasePlan plan;
        List<(string SessionId, long Token)> renew;
        lock (_lock)
        {
            var heldElsewhere = new Dictionary<string, string>(StringComparer.Ordinal);
            var handedOff = new HashSet<string>(StringComparer.Ordinal);
            var live = new HashSet<string>(_liveNodes, StringComparer.Ordinal);
            var orphaned = new Dictionary<string, string>(StringComparer.Ordinal);
            // A wake-up timed for a lease's expiry can fire a hair early; Redis decides anyway, so a lease about to
            // expire counts as expired rather than costing a whole cycle.
            var expiredBy = started + ExpiryTolerance;
            foreach (var (session, f) in _foreign)
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
                else if ((live.Contains(f.Holder) && started - f.LearnedAt <= _recheckTicks) || f.Malformed)
                {
                    // Older knowledge counts as none, so the session is probed again within a regular cycle: an
                    // expiry kept moving by the holder's heartbeat must not hide a release whose event was lost.
                    heldElsewhere[session] = f.Holder;
                }
            }
            plan = _planner.Plan(new LeasePlanInput(InstanceId, _liveNodes, _activeSessions, _held.Keys.ToHashSet(StringComparer.Ordinal), heldElsewhere, handedOff, orphaned)
            {
                HeartbeatAge = _beats.Ages,
                ViewAge = _time.GetElapsedTime(_beats.ReadAt, started),
            });
        }
        var release = TakeForRelease(plan.Release, events);
        lock (_lock)
        {
            renew = _held.Values.Select(e => (e.SessionId, e.Token)).ToList();
        }

        var sent = _time.GetTimestamp();
        CycleResponse response;
        try
        {
            response = await _store.RunAsync(
                    new CycleRequest(HeartbeatMode.Beat, renew, plan.Acquire, release.Select(r => (r.SessionId, r.Token)).ToList()),
                    _nodeMetadata)
                .WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            // Fail closed on any failure of the round trip (connection errors, timeouts, a disposed connection,
            // a malformed reply): the leases become Uncertain and are given up at their deadlines.
            _consecutiveFailures++;
            _metrics.CycleFailed();
            int owned;
            lock (_lock)
            {
                owned = _held.Count;
                foreach (var entry in _held.Values)
                {
                    if (entry.State == LeaseState.Owned)
                    {
                        entry.State = LeaseState.Uncertain;
                        events.Add(Event(LeaseEventKind.Uncertain, entry.SessionId, entry.Token, LeaseReasons.RenewFailed));
                    }
                }
            }
            LeaseLog.CycleFailed(_logger, e, InstanceId, owned);
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            Raise(events);
            return new LeaseCycleResult(false, 0, 0, events.Count(x => x.Kind == LeaseEventKind.Lost), release.Count, LiveNodes.Count, _time.GetElapsedTime(sent));
        }

        var elapsed = _time.GetElapsedTime(sent);
        _metrics.CycleDuration(elapsed);
        if (_consecutiveFailures > 0)
        {
            LeaseLog.Recovered(_logger, InstanceId, _consecutiveFailures);
            _consecutiveFailures = 0;
        }
        _registered = true;
        if (response.CatalogVersion != _catalogVersion)
        {
            // The catalog changed since this cycle read it: run the next cycle now, so paused and removed
            // sessions are released (and new ones acquired) within one cycle of the change.
            _catalogVersion = response.CatalogVersion;
            _wake.Set();
        }
        if (_liveNodes.Except(response.LiveNodes, StringComparer.Ordinal).Any())
        {
            // An instance dropped out of the registry (it stopped heartbeating): re-plan now, its sessions are free.
            _wake.Set();
        }
        Volatile.Write(ref _liveNodes, response.LiveNodes);
        _beats = FleetBeats.From(response, _options.HeartbeatTtl, _time.GetTimestamp());
        FollowHolders(response.HeartbeatExpiry);

        var renewed = ApplyRenewed(renew, response, sent, events);
        var acquired = ApplyAcquired(plan.Acquire, response, sent, events);
        foreach (var group in release.GroupBy(r => r.Reason))
        {
            _metrics.Released(group.Key, group.Count());
        }
        Raise(events);
        activity?.SetTag("polllease.renewed", renewed);
        activity?.SetTag("polllease.acquired", acquired);
        return new LeaseCycleResult(true, acquired, renewed, events.Count(x => x.Kind == LeaseEventKind.Lost), release.Count, response.LiveNodes.Count, elapsed);
    }

    /// <summary>
    /// An unregistered instance registers (and learns the fleet) in a round trip of its own before its first
    /// plan: planning without the fleet's view would make every session look like this instance's.
    /// </summary>
    private async Task<bool> RegisterAsync(CancellationToken cancellationToken)
    {
        try
        {
            var response = await _store.RunAsync(new CycleRequest(HeartbeatMode.Register, [], [], []), _nodeMetadata)
                .WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
            _registered = true;
            _catalogVersion = response.CatalogVersion;
            Volatile.Write(ref _liveNodes, response.LiveNodes);
            _beats = FleetBeats.From(response, _options.HeartbeatTtl, _time.GetTimestamp());
            return true;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            _consecutiveFailures++;
            _metrics.CycleFailed();
            LeaseLog.CycleFailed(_logger, e, InstanceId, 0);
            return false;
        }
    }

    private int ApplyRenewed(List<(string SessionId, long Token)> renew, CycleResponse response, long sent, List<LeaseEvent> events)
    {
        var renewed = 0;
        lock (_lock)
        {
            for (var i = 0; i < renew.Count; i++)
            {
                var (session, token) = renew[i];
                if (!_held.TryGetValue(session, out var entry) || entry.Token != token)
                {
                    continue;
                }
                var outcome = response.Renew[i];
                if (outcome.Renewed)
                {
                    // A renew that returns after the deadline cannot revive the lease: others may already hold it.
                    if (entry.EffectiveState(_time.GetTimestamp()) == LeaseState.Lost)
                    {
                        continue;
                    }
                    entry.ValidUntil = sent + _validityTicks;
                    entry.State = LeaseState.Owned;
                    renewed++;
                    events.Add(Event(LeaseEventKind.Renewed, session, token, null));
                }
                else
                {
                    _held.Remove(session);
                    var reason = outcome.Holder is null ? LeaseReasons.Expired : LeaseReasons.Taken;
                    if (outcome.Holder is not null)
                    {
                        RememberForeign(session, outcome.Holder, _options.LeaseTtl, response, sent);
                    }
                    events.Add(Event(LeaseEventKind.Lost, session, token, reason));
                }
            }
        }
        return renewed;
    }

    private int ApplyAcquired(IReadOnlyList<string> acquire, CycleResponse response, long sent, List<LeaseEvent> events)
    {
        var acquired = 0;
        List<(string Session, long Token, string From)>? failovers = null;
        lock (_lock)
        {
            for (var i = 0; i < acquire.Count; i++)
            {
                var session = acquire[i];
                var outcome = response.Acquire[i];
                if (outcome.Token > 0)
                {
                    // A failover: the session was seen held by another instance, which never announced a release, and
                    // the request went out once that lease had expired (a release would have freed it before expiry).
                    if (_foreign.Remove(session, out var previous) && !previous.HandedOff && previous.Holder != InstanceId
                        && sent + ExpiryTolerance >= previous.ExpiresAt)
                    {
                        (failovers ??= []).Add((session, outcome.Token, previous.Holder));
                    }
                    _held[session] = new Entry(session, outcome.Token, sent + _validityTicks, _time.GetUtcNow());
                    acquired++;
                    events.Add(Event(LeaseEventKind.Acquired, session, outcome.Token, null));
                }
                else if (outcome.Holder is not null)
                {
                    RememberForeign(session, outcome.Holder, outcome.HolderRemaining, response, sent);
                }
            }
        }
        _metrics.Acquired(acquired);
        foreach (var (session, token, from) in failovers ?? [])
        {
            _metrics.Failover(from);
            LeaseLog.Failover(_logger, InstanceId, session, token, from);
        }
        return acquired;
    }

    private void RememberForeign(string session, string value, TimeSpan remaining, CycleResponse response, long sent)
    {
        if (_foreign.TryGetValue(session, out var known) && known.HandedOff && known.LearnedAt >= sent)
        {
            // The holder's release event overtook this reply (events come on another connection): the release is
            // the newer fact, and overwriting it would leave the session to nobody until this knowledge goes stale.
            return;
        }
        var malformed = !LeaseValue.TryParse(value, out var holder, out _);
        if (malformed)
        {
            LeaseLog.MalformedLease(_logger, session, value.Length > 80 ? value[..80] : value);
            holder = value;
            // Garbage often has no TTL: look again a lease TTL later rather than every cycle (one warning per TTL).
            remaining = remaining < _options.LeaseTtl ? _options.LeaseTtl : remaining;
        }
        // A lease about to expire can report a PTTL of 0 (or less): still wake for it, a moment later, instead of
        // waiting a whole cycle to take it over.
        var wait = remaining < MinForeignWait ? MinForeignWait : remaining;
        var now = _time.GetTimestamp();
        _foreign[session] = new Foreign(holder, now + (long)(wait.TotalSeconds * _time.TimestampFrequency), Malformed: malformed)
        {
            HolderBeat = response.HeartbeatExpiry.GetValueOrDefault(holder),
            LearnedAt = now,
        };
    }

    /// <summary>
    /// Moves the expiry learnt for each foreign lease on by as much as its holder's heartbeat moved since: the
    /// holder renewed its leases in the same script. A live holder's leases then never look about to expire, so
    /// the takeover candidate does not wake and probe them again every few hundred ms (at 20 instances x 10,000
    /// sessions that was 9x the cycles and 10x the Redis commands); a crashed holder's stop moving, and the
    /// candidate still wakes at their expiry.
    /// </summary>
    private void FollowHolders(IReadOnlyDictionary<string, long> beats)
    {
        lock (_lock)
        {
            List<(string Session, Foreign Moved)>? moved = null;
            foreach (var (session, f) in _foreign)
            {
                if (!f.HandedOff && f.HolderBeat > 0 && beats.TryGetValue(f.Holder, out var beat) && beat > f.HolderBeat)
                {
                    var shift = (long)((beat - f.HolderBeat) / 1000.0 * _time.TimestampFrequency);
                    (moved ??= []).Add((session, f with { ExpiresAt = f.ExpiresAt + shift, HolderBeat = beat }));
                }
            }
            foreach (var (session, f) in moved ?? [])
            {
                _foreign[session] = f;
            }
        }
    }

    private static string HolderId(string session, string? value) =>
        LeaseValue.TryParse(value, out var owner, out _) ? owner : value ?? "";

    private List<(string SessionId, long Token, string Reason)> TakeForRelease(IEnumerable<(string SessionId, string Reason)> wanted, List<LeaseEvent> events)
    {
        var result = new List<(string, long, string)>();
        lock (_lock)
        {
            foreach (var (session, reason) in wanted)
            {
                if (_held.Remove(session, out var entry))
                {
                    result.Add((session, entry.Token, reason));
                    events.Add(Event(LeaseEventKind.Released, session, entry.Token, reason));
                }
            }
        }
        return result;
    }

    private void SweepDeadlines(long now, List<LeaseEvent> events)
    {
        lock (_lock)
        {
            List<string>? lost = null;
            foreach (var entry in _held.Values)
            {
                if (entry.EffectiveState(now) == LeaseState.Lost)
                {
                    (lost ??= []).Add(entry.SessionId);
                    events.Add(Event(LeaseEventKind.Lost, entry.SessionId, entry.Token, LeaseReasons.Deadline));
                }
            }
            foreach (var session in lost ?? [])
            {
                _held.Remove(session);
            }
        }
    }

    private async Task LoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            TimeSpan delay;
            try
            {
                var result = await RunCycleAsync(stopping).ConfigureAwait(false);
                delay = result.Succeeded ? _options.CycleInterval : _options.RetryInterval;
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Anything unexpected (a bug in a handler path, a malformed reply) must not end the loop: the
                // instance would keep its registry entry alive nowhere and silently stop renewing.
                LeaseLog.CycleFailed(_logger, e, InstanceId, OwnedSessions().Count);
                delay = _options.RetryInterval;
            }

            var wakeAt = NextWake(delay);
            try
            {
                await _wake.WaitAsync(wakeAt, _time, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
        }
    }

    /// <summary>The sooner of the next cycle, the earliest local deadline (so Lost is reported on time) and the earliest foreign expiry of an active session (takeover at PTTL).</summary>
    private TimeSpan NextWake(TimeSpan delay)
    {
        var now = _time.GetTimestamp();
        var earliest = now + (long)(delay.TotalSeconds * _time.TimestampFrequency);
        lock (_lock)
        {
            foreach (var e in _held.Values)
            {
                earliest = Math.Min(earliest, e.ValidUntil);
            }
            foreach (var f in _foreign.Values)
            {
                if (f.ExpiresAt > now)
                {
                    earliest = Math.Min(earliest, f.ExpiresAt);
                }
            }
        }
        return _time.GetElapsedTime(now, Math.Max(earliest, now));
    }

    private void OnFleetEvent(ChannelMessage message)
    {
        // released|id|s1,s2 (rebalance or shutdown), joined|id, left|id, assignment|version: act on them now rather
        // than at the next cycle.
        var parts = message.Message.ToString().Split('|');
        if (parts.Length < 2 || parts[1] == InstanceId)
        {
            return;
        }
        var sender = parts[1];
        switch (parts[0])
        {
            case "released" when parts.Length == 3:
                var now = _time.GetTimestamp();
                var until = now + (long)(_options.RetryInterval.TotalSeconds * _time.TimestampFrequency);
                lock (_lock)
                {
                    foreach (var session in parts[2].Split(','))
                    {
                        _foreign[session] = new Foreign(sender, until, HandedOff: true) { LearnedAt = now };
                    }
                }
                break;
            case "joined":
                UpdateLiveNodes(nodes => nodes.Contains(sender, StringComparer.Ordinal) ? nodes : [.. nodes, sender]);
                break;
            case "left":
                UpdateLiveNodes(nodes => nodes.Where(n => n != sender).ToArray());
                break;
            case "assignment":
                // The follower reloads and wakes the cycle once the new assignment is in.
                _follower?.Signal();
                return;
            default:
                return;
        }
        _wake.Set();
    }

    private void UpdateLiveNodes(Func<IReadOnlyList<string>, IReadOnlyList<string>> change)
    {
        lock (_lock)
        {
            Volatile.Write(ref _liveNodes, change(_liveNodes).Order(StringComparer.Ordinal).ToArray());
        }
    }

    private LeaseEvent Event(LeaseEventKind kind, string session, long token, string? reason) =>
        new(kind, InstanceId, session, token, reason, _time.GetUtcNow());

    private void Raise(List<LeaseEvent> events)
    {
        var handler = LeaseChanged;
        foreach (var e in events)
        {
            switch (e.Kind)
            {
                case LeaseEventKind.Acquired:
                    LeaseLog.Acquired(_logger, InstanceId, e.SessionId, e.Token);
                    break;
                case LeaseEventKind.Renewed:
                    LeaseLog.Renewed(_logger, InstanceId, e.SessionId, e.Token);
                    break;
                case LeaseEventKind.Uncertain:
                    LeaseLog.Uncertain(_logger, InstanceId, e.SessionId, e.Token, e.Reason ?? "");
                    break;
                case LeaseEventKind.Lost:
                    _metrics.Lost(e.Reason ?? "");
                    LeaseLog.Lost(_logger, InstanceId, e.SessionId, e.Token, e.Reason ?? "");
                    break;
                case LeaseEventKind.Released when e.Reason != LeaseReasons.Shutdown:
                    LeaseLog.Released(_logger, InstanceId, e.SessionId, e.Reason ?? "");
                    break;
            }
            if (handler is null)
            {
                continue;
            }
            try
            {
                handler(this, e);
            }
#pragma warning disable CA1031 // A subscriber's bug must not stop the lease cycle; it is logged with the event.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LeaseLog.HandlerFailed(_logger, ex, InstanceId, e.Kind.ToString(), e.SessionId);
            }
        }
    }

    private LeaseSnapshot Snapshot(Entry e, long now) =>
        new(e.SessionId, e.Token, e.EffectiveState(now), _time.GetElapsedTime(now, Math.Max(now, e.ValidUntil)), e.AcquiredAt);

    private sealed class Entry(string sessionId, long token, long validUntil, DateTimeOffset acquiredAt)
    {
        public string SessionId { get; } = sessionId;

        public long Token { get; } = token;

        public long ValidUntil { get; set; } = validUntil;

        public LeaseState State { get; set; } = LeaseState.Owned;

        public DateTimeOffset AcquiredAt { get; } = acquiredAt;

        public LeaseState EffectiveState(long now) => now >= ValidUntil ? LeaseState.Lost : State;
    }

    /// <summary>
    /// A lease seen held by another instance until <c>ExpiresAt</c>; <c>HandedOff</c> when that instance has just
    /// released it; <c>Malformed</c> when its value could not be parsed (looked at again once per TTL).
    /// <c>HolderBeat</c>: the holder's heartbeat expiry (server ms) when that was learnt, 0 if unknown;
    /// <c>LearnedAt</c>: when Redis last reported the holder (local timestamp).
    /// </summary>
    private readonly record struct Foreign(string Holder, long ExpiresAt, bool HandedOff = false, bool Malformed = false)
    {
        public long HolderBeat { get; init; }

        public long LearnedAt { get; init; }
    }
}
