using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PollLease.Assignment;
using PollLease.Sessions;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// One instance's lease loop: each cycle plans, sends one script call (heartbeat, acquire, release, a slice of safety
/// refreshes, the fleet's view), applies the answer to its <see cref="LeaseTable"/> and raises the events. Every
/// lease hangs on the instance's heartbeat, so renewing them all costs one ZADD whatever the number held.
/// </summary>
/// <remarks>
/// Safety: a lease counts as owned only until <c>send time of the last successful heartbeat + LeaseTtl -
/// SafetyMargin</c> on a monotonic clock. A failed cycle makes leases <see cref="LeaseState.Uncertain"/> (no new
/// polls); the deadline makes them <see cref="LeaseState.Lost"/>. With Redis unreachable nothing stays owned past
/// its deadline, and the instance recovers by itself when Redis returns. All members are thread-safe.
/// </remarks>
public sealed class LeaseManager : IAsyncDisposable, ILeaseView
{
    /// <summary>How often an instance checks the published assignment's version in case it missed the event.</summary>
    internal static readonly TimeSpan AssignmentCheckInterval = TimeSpan.FromSeconds(30);

    private readonly LeaseStore _store;
    private readonly LeaseTable _table;
    private readonly ISessionDirectory _sessions;
    private readonly ILeasePlanner _planner;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly LeaseNotifier _notifier;
    private readonly IConnectionMultiplexer _redis;
    private readonly AssignmentFollower? _follower;
    private readonly SemaphoreSlim _cycleGate = new(1, 1);
    private readonly WakeSignal _wake = new();
    private IReadOnlyCollection<string> _active = new HashSet<string>(StringComparer.Ordinal);
    private IReadOnlyCollection<string>? _activeSource;
    private string _catalogVersion = "";
    private bool _registered;
    private int _failures;
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
    public LeaseManager(IConnectionMultiplexer redis, PollLeaseOptions options, ISessionDirectory sessions, TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
        : this(redis, options, sessions, DefaultPlanner(options, timeProvider), timeProvider, loggerFactory, meterFactory)
    {
    }

    internal LeaseManager(IConnectionMultiplexer redis, PollLeaseOptions options, ISessionDirectory sessions, ILeasePlanner planner,
        TimeProvider? timeProvider, ILoggerFactory? loggerFactory, IMeterFactory? meterFactory)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(sessions);
        PollLeaseOptionsValidator.ThrowIfInvalid(options);
        (_redis, Options, _sessions, _planner) = (redis, options, sessions, planner);
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollLease.Leases");
        InstanceId = InstanceIdentity.Resolve(options.InstanceId, _time);
        Keys = new RedisKeys(options.KeyPrefix);
        _store = new LeaseStore(redis, Keys, InstanceId, options, InstanceIdentity.Metadata(InstanceId, _time));
        _table = new LeaseTable(InstanceId, options, _time, (session, value) => LeaseLog.MalformedLease(_logger, session, value));
        _notifier = new LeaseNotifier(_logger, new LeaseMetrics(meterFactory, InstanceId, () => _table.Count), InstanceId);
        if (planner is BalancedPlanner balanced)
        {
            _follower = new AssignmentFollower(new AssignmentStore(redis, Keys), published =>
            {
                balanced.UseBase(published);
                _wake.Set();
            }, AssignmentCheckInterval, options.OperationTimeout, _time, _logger, InstanceId);
        }
    }

    /// <summary>Raised for every lease change. Handlers run on the cycle's thread; exceptions are logged and ignored.</summary>
    public event EventHandler<LeaseEvent>? LeaseChanged;

    /// <summary>This instance's id.</summary>
    public string InstanceId { get; }

    /// <summary>The options in force.</summary>
    public PollLeaseOptions Options { get; }

    internal RedisKeys Keys { get; }

    /// <summary>Live instance ids as of the last successful cycle (sorted).</summary>
    public IReadOnlyList<string> LiveNodes => _table.LiveNodes;

    /// <summary>The balanced assignment this instance planned its last cycle with; every instance with the same view computes the same one.</summary>
    public BalancedAssignment Assignment => _planner is BalancedPlanner balanced
        ? balanced.Current
        : BalancedAssignment.Compute(LiveNodes.Append(InstanceId), ActiveSessions, Options.BalanceEpsilon);

    /// <summary>The instance the session is assigned to in <see cref="Assignment"/>, or null.</summary>
    /// <param name="sessionId">The session.</param>
    public string? PreferredOwner(string sessionId) => Assignment.PreferredOwner(sessionId);

    /// <summary>True when this instance is the session's assigned instance.</summary>
    /// <param name="sessionId">The session.</param>
    public bool IsPreferredOwner(string sessionId) => Assignment.IsPreferredOwner(sessionId, InstanceId);

    /// <summary>Active session ids as of the last cycle.</summary>
    public IReadOnlyCollection<string> ActiveSessions => Volatile.Read(ref _active);

    /// <summary>True between <see cref="StartAsync"/> and <see cref="StopAsync"/>.</summary>
    public bool IsRunning => _loop is not null;

    /// <summary>True when this instance holds the session's lease and it is locally valid; no round trip.</summary>
    /// <param name="sessionId">The session.</param>
    public bool IsOwned(string sessionId) => GetState(sessionId) == LeaseState.Owned;

    /// <summary>The lease's state as this instance sees it now.</summary>
    /// <param name="sessionId">The session.</param>
    public LeaseState GetState(string sessionId) => _table.State(sessionId, _time.GetTimestamp());

    /// <summary>The lease of <paramref name="sessionId"/> when this instance holds it (Owned or Uncertain).</summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="lease">The lease when found.</param>
    public bool TryGetLease(string sessionId, out LeaseSnapshot lease) => _table.TryGet(sessionId, _time.GetTimestamp(), out lease);

    /// <summary>Every lease this instance holds and has not lost.</summary>
    public IReadOnlyList<LeaseSnapshot> OwnedSessions() => _table.Held(_time.GetTimestamp());

    /// <summary>Checks ownership against Redis now (one round trip): locally Owned and Redis still holds this value and token.</summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    public async Task<bool> IsOwnedStrictAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        if (!TryGetLease(sessionId, out var lease) || lease.State != LeaseState.Owned)
        {
            return false;
        }
        var value = await _store.GetLeaseValueAsync(sessionId).WaitAsync(Options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
        return value == LeaseValue.Format(InstanceId, lease.Token) && IsOwned(sessionId);
    }

    void ILeaseView.PollStarted(string sessionId, long token, long at, bool record) => _table.PollStarted(sessionId, token, at, record);

    bool ILeaseView.TryGetPreviousPoll(string sessionId, long token, out long at) => _table.TryGetPreviousPoll(sessionId, token, out at);

    /// <summary>Registers (one round trip that also takes the first leases), subscribes to fleet events and starts the loop. Redis being down does not fail it.</summary>
    /// <param name="cancellationToken">Cancels the start.</param>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_loop is not null)
        {
            throw new InvalidOperationException($"Lease manager {InstanceId} is already running.");
        }
        _table.Open();
        LeaseLog.Registered(_logger, InstanceId, Options.KeyPrefix, Options.LeaseTtl, Options.RenewInterval);
        try
        {
            _subscription = await _redis.GetSubscriber().SubscribeAsync(Keys.Events).ConfigureAwait(false);
            _subscription.OnMessage(m => React(FleetEvents.Apply(_table, InstanceId, m.Message.ToString(), _time.GetTimestamp())));
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
    /// Stops: ends the loop (a cycle in flight finishes first), then releases every lease and deregisters in one
    /// round trip bounded by <see cref="PollLeaseOptions.ShutdownTimeout"/>. That request also deletes whatever this
    /// instance's index in Redis still names, so what a cycle still in flight acquired is released too. Never throws
    /// for Redis or the budget: the result says what was released and what is left to expire.
    /// </summary>
    /// <param name="cancellationToken">The stop's budget: when it runs out, the stop stops waiting and reports what is left.</param>
    public async Task<LeaseStopResult> StopAsync(CancellationToken cancellationToken = default)
    {
        var (loop, cts) = (_loop, _loopCts);
        (_loop, _loopCts) = (null, null);
        var gated = false;
        try
        {
            await EndLoopAsync(cts, loop).WaitAsync(cancellationToken).ConfigureAwait(false);
            cts?.Dispose();
            await _cycleGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            gated = true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The budget ran out while a cycle was in flight: stop without it. Scripts on one connection run in send
            // order, so the stop request still runs after that cycle and deletes what it acquired.
        }
        var events = new List<LeaseEvent>();
        try
        {
            var release = _table.TakeAll(LeaseReasons.Shutdown, events);
            try
            {
                var response = await _store.RunAsync(new CycleRequest(HeartbeatMode.Deregister, [], [], release))
                    .WaitAsync(Options.ShutdownTimeout, _time, cancellationToken).ConfigureAwait(false);
                _registered = false;
                var released = response.Released.Count(x => x) + response.Swept;
                LeaseLog.Stopped(_logger, InstanceId, released, true);
                return new LeaseStopResult(released, 0, true);
            }
            catch (Exception e)
            {
                // Whatever failed (Redis gone, budget, a disposed connection), the leases are already given up
                // locally; others may take them once this instance's heartbeat expires.
                LeaseLog.StopFailed(_logger, e, InstanceId, release.Count, Options.LeaseTtl);
                return new LeaseStopResult(0, release.Count, false);
            }
            finally
            {
                _notifier.Counted(new CycleApplied(0, 0, 0, false, []), events);
                _notifier.Raise(events, this, LeaseChanged);
            }
        }
        finally
        {
            if (gated)
            {
                _cycleGate.Release();
            }
        }
    }

    /// <summary>Acquires one session's lease now if nobody live holds it (one round trip); the loop does this on its own.</summary>
    /// <param name="sessionId">The session (validated).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The token when acquired; otherwise the current holder.</returns>
    public async Task<LeaseAcquireResult> TryAcquireAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        if (TryGetLease(sessionId, out var held) && held.State == LeaseState.Owned)
        {
            return new LeaseAcquireResult(true, held.Token, InstanceId);
        }
        var (_, response) = await GatedAsync(new LeasePlan([sessionId], []), cancellationToken).ConfigureAwait(false);
        var outcome = response.Acquire[0];
        return outcome.Token > 0
            ? new LeaseAcquireResult(true, outcome.Token, InstanceId)
            : new LeaseAcquireResult(false, 0, LeaseValue.TryParse(outcome.Holder, out var owner, out _) ? owner : outcome.Holder ?? "");
    }

    /// <summary>Releases one lease (compare owner and token, then delete) and announces it. It stops counting as owned before the request is sent.</summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="reason">Why (see <see cref="LeaseReasons"/>); logged and tagged on metrics.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>True when Redis held this instance's lease and deleted it.</returns>
    public async Task<bool> ReleaseAsync(string sessionId, string reason = LeaseReasons.Requested, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        if (_table.State(sessionId, _time.GetTimestamp()) == LeaseState.None)
        {
            return false;
        }
        var (request, response) = await GatedAsync(new LeasePlan([], [(sessionId, reason)]), cancellationToken).ConfigureAwait(false);
        return request.Release.Select((r, i) => r.SessionId == sessionId && response.Released[i]).Any(x => x);
    }

    /// <summary>Runs one cycle now (cycles never overlap). Redis failures do not throw; they are logged, counted and reported.</summary>
    /// <param name="cancellationToken">Cancels the cycle.</param>
    public async Task<LeaseCycleResult> RunCycleAsync(CancellationToken cancellationToken = default) =>
        (await RunGatedCycleAsync(onlyIfRunning: false, cancellationToken).ConfigureAwait(false))!;

    /// <summary>Runs one cycle now if started and not stopping, else returns null: a timer trigger during a stop must not register again.</summary>
    internal Task<LeaseCycleResult?> RunCycleIfRunningAsync(CancellationToken cancellationToken) => RunGatedCycleAsync(onlyIfRunning: true, cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_loop is not null)
        {
            await StopAsync().ConfigureAwait(false);
        }
        _cycleGate.Dispose();
    }

    private static BalancedPlanner DefaultPlanner(PollLeaseOptions options, TimeProvider? time)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new BalancedPlanner(options.BalanceEpsilon, time ?? TimeProvider.System, options.HeartbeatTtl + options.CycleInterval);
    }

    private async Task EndLoopAsync(CancellationTokenSource? cts, Task? loop)
    {
        if (cts is not null)
        {
            await cts.CancelAsync().ConfigureAwait(false);
        }
        await (loop ?? Task.CompletedTask).ConfigureAwait(false);
        await (_follower?.StopAsync() ?? Task.CompletedTask).ConfigureAwait(false);
        try
        {
            await (_subscription?.UnsubscribeAsync() ?? Task.CompletedTask).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or ObjectDisposedException)
        {
            LeaseLog.CycleFailed(_logger, e, InstanceId, 0);
        }
        _subscription = null;
    }

    private async Task<(CycleRequest Request, CycleResponse Response)> GatedAsync(LeasePlan plan, CancellationToken cancellationToken)
    {
        await _cycleGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var events = new List<LeaseEvent>();
            var request = _table.BuildRequest(_registered ? HeartbeatMode.Beat : HeartbeatMode.Register, plan, events);
            var (response, _, error) = await SendAsync(request, events, cancellationToken).ConfigureAwait(false);
            _notifier.Raise(events, this, LeaseChanged);
            error?.Throw();
            return (request, response!);
        }
        finally
        {
            _cycleGate.Release();
        }
    }

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

    private async Task<LeaseCycleResult> RunCycleCoreAsync(CancellationToken cancellationToken)
    {
        using var activity = PollLeaseTelemetry.ActivitySource.StartActivity("polllease.cycle");
        activity?.SetTag("polllease.instance", InstanceId);
        var events = new List<LeaseEvent>();
        _table.SweepDeadlines(_time.GetTimestamp(), events);
        try
        {
            var active = await _sessions.GetActiveSessionIdsAsync(_catalogVersion, cancellationToken).ConfigureAwait(false);
            if (!ReferenceEquals(active, _activeSource))
            {
                // The planner looks every session up each cycle: a set, built once per change of the directory's answer.
                _activeSource = active;
                Volatile.Write(ref _active, active as IReadOnlySet<string> is not null ? active : new HashSet<string>(active, StringComparer.Ordinal));
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LeaseLog.SessionSourceFailed(_logger, e, InstanceId);
        }
        if (!_registered)
        {
            // Register (and learn the fleet) in a round trip of its own: planning without the fleet's view would make
            // every session look like this instance's.
            var (registered, _, _) = await SendAsync(_table.BuildRequest(HeartbeatMode.Register, new LeasePlan([], []), events), events, cancellationToken).ConfigureAwait(false);
            if (registered is null)
            {
                _notifier.Raise(events, this, LeaseChanged);
                return new LeaseCycleResult(false, 0, 0, 0, 0, 0, TimeSpan.Zero);
            }
        }
        var plan = _planner.Plan(_table.PlanInput(ActiveSessions, _time.GetTimestamp()));
        var request = _table.BuildRequest(HeartbeatMode.Beat, plan, events);
        var sent = _time.GetTimestamp();
        var (response, applied, _) = await SendAsync(request, events, cancellationToken).ConfigureAwait(false);
        _notifier.Raise(events, this, LeaseChanged);
        var lost = events.Count(e => e.Kind == LeaseEventKind.Lost);
        if (response is null)
        {
            activity?.SetStatus(ActivityStatusCode.Error);
            return new LeaseCycleResult(false, 0, 0, lost, request.Release.Count, LiveNodes.Count, _time.GetElapsedTime(sent));
        }
        _notifier.CycleDuration(_time.GetElapsedTime(sent));
        activity?.SetTag("polllease.acquired", applied!.Acquired);
        return new LeaseCycleResult(true, applied!.Acquired, applied.Renewed, lost, request.Release.Count, response.LiveNodes.Count, _time.GetElapsedTime(sent));
    }

    /// <summary>The one await of a cycle: send, then apply the answer (or the failure) to the table. Null and the error on failure.</summary>
    private async Task<(CycleResponse? Response, CycleApplied? Applied, ExceptionDispatchInfo? Error)> SendAsync(CycleRequest request, List<LeaseEvent> events, CancellationToken cancellationToken)
    {
        var sent = _time.GetTimestamp();
        try
        {
            var response = await _store.RunAsync(request).WaitAsync(Options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
            var applied = _table.Apply(request, response, sent, events);
            _notifier.Counted(applied, events);
            if (_failures > 0)
            {
                LeaseLog.Recovered(_logger, InstanceId, _failures);
                _failures = 0;
            }
            _registered = true;
            if (response.CatalogVersion != _catalogVersion || applied.NodeDropped)
            {
                // The catalog changed since it was read, or an instance dropped out (its sessions are free): plan again now.
                _catalogVersion = response.CatalogVersion;
                _wake.Set();
            }
            return (response, applied, null);
        }
        catch (Exception e)
        {
            // Fail closed on any failure of the round trip (connection errors, timeouts, LATE, a malformed reply, the
            // caller giving up): leases turn Uncertain, and what the request may have done in Redis is sent again.
            _table.Failed(request, events);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            _failures++;
            _notifier.CycleFailed();
            LeaseLog.CycleFailed(_logger, e, InstanceId, _table.Count);
            return (null, null, ExceptionDispatchInfo.Capture(e));
        }
    }

    private async Task LoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            TimeSpan delay;
            try
            {
                // Not cancelled by the stop: a cycle in flight is let finish (bounded by OperationTimeout), so the stop's
                // release list includes what it acquired.
                delay = (await RunCycleAsync(CancellationToken.None).ConfigureAwait(false)).Succeeded ? Options.CycleInterval : Options.RetryInterval;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Anything unexpected must not end the loop: the instance would stop heartbeating while still registered.
                LeaseLog.CycleFailed(_logger, e, InstanceId, _table.Count);
                delay = Options.RetryInterval;
            }
            try
            {
                await _wake.WaitAsync(_table.NextWake(_time.GetTimestamp(), delay), _time, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
        }
    }

    private void React(FleetEvents.Reaction reaction)
    {
        if (reaction == FleetEvents.Reaction.Assignment)
        {
            _follower?.Signal(); // it reloads and wakes the cycle once the new assignment is in
        }
        else if (reaction == FleetEvents.Reaction.Wake)
        {
            _wake.Set();
        }
    }
}
