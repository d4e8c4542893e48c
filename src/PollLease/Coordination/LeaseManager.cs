using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PollLease.Assignment;
using PollLease.Sessions;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// One instance's lease loop: each cycle plans, sends one script call (heartbeat, acquire, release, the fleet's view),
/// applies the answer and raises the events. Every lease hangs on the instance's heartbeat, so renewing them all
/// costs one ZADD whatever the number held.
/// </summary>
/// <remarks>
/// A lease counts as owned only until <c>send time of the last successful heartbeat + LeaseTtl - SafetyMargin</c>
/// (monotonic clock); a failed cycle makes it <see cref="LeaseState.Uncertain"/> (no new polls), the deadline
/// <see cref="LeaseState.Lost"/>. It recovers by itself when Redis returns. All members are thread-safe.
/// </remarks>
public sealed class LeaseManager : IAsyncDisposable, ILeaseView
{
    /// <summary>How often an instance checks the published assignment's version in case it missed the event.</summary>
    internal static readonly TimeSpan AssignmentCheckInterval = TimeSpan.FromSeconds(30);

    private readonly CycleSender _sender;
    private readonly LeaseTable _table;
    private readonly ActiveSessions _active;
    private readonly ILeasePlanner _planner;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly LeaseNotifier _notifier;
    private readonly FleetListener _fleet;
    private readonly BackgroundLoop _loop;

    /// <summary>Creates a lease manager. Nothing touches Redis until <see cref="StartAsync"/> or a cycle runs.</summary>
    /// <param name="redis">The shared connection (AbortOnConnectFail=false so it reconnects by itself).</param>
    /// <param name="options">Validated options; they are checked again here.</param>
    /// <param name="sessions">Where the sessions come from; the active (not paused) ones are leased.</param>
    /// <param name="timeProvider">Clock (monotonic timestamps for deadlines); <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="loggerFactory">Logging; none by default.</param>
    /// <param name="meterFactory">Metrics; a private meter by default.</param>
    public LeaseManager(IConnectionMultiplexer redis, PollLeaseOptions options, ISessionSource sessions, TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
        : this(redis, options, sessions, DefaultPlanner(options, timeProvider, loggerFactory), timeProvider, loggerFactory, meterFactory)
    {
    }

    internal LeaseManager(IConnectionMultiplexer redis, PollLeaseOptions options, ISessionSource sessions, ILeasePlanner planner,
        TimeProvider? timeProvider, ILoggerFactory? loggerFactory, IMeterFactory? meterFactory)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(sessions);
        PollLeaseOptionsValidator.ThrowIfInvalid(options);
        (Options, _planner) = (options, planner);
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollLease.Leases");
        InstanceId = InstanceIdentity.Resolve(options.InstanceId, _time);
        Keys = new RedisKeys(options.KeyPrefix);
        _table = new LeaseTable(InstanceId, options, _time, (session, value) => LeaseLog.MalformedLease(_logger, session, value));
        _loop = new BackgroundLoop(_time);
        _notifier = new LeaseNotifier(_logger, new LeaseMetrics(meterFactory, InstanceId, () => _table.Count), InstanceId);
        var store = new LeaseStore(redis, Keys, InstanceId, options, InstanceIdentity.Metadata(InstanceId, _time));
        _sender = new CycleSender(store, _table, _notifier, options, _time, _logger, InstanceId, _loop.Wake);
        _active = new ActiveSessions(sessions, _logger);
        _fleet = new FleetListener(redis, Keys, _table, planner, options, InstanceId, _time, _logger, _loop.Wake);
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

    /// <summary>The assignment this instance planned its last cycle with, over the instances whose heartbeat was fresh.</summary>
    internal BalancedAssignment Assignment =>
        _planner is BalancedPlanner balanced ? balanced.Current : BalancedAssignment.Compute(LiveNodes.Append(InstanceId), ActiveSessions, Options.BalanceEpsilon);

    /// <summary>The instance the session is assigned to in <see cref="Assignment"/>, or null.</summary>
    public string? PreferredOwner(string sessionId) => Assignment.PreferredOwner(sessionId);

    /// <summary>True when this instance is the session's assigned instance.</summary>
    public bool IsPreferredOwner(string sessionId) => Assignment.IsPreferredOwner(sessionId, InstanceId);

    /// <summary>Active session ids as of the last cycle.</summary>
    public IReadOnlyCollection<string> ActiveSessions => _active.Current;

    /// <inheritdoc />
    IReadOnlyDictionary<string, PollSession> ILeaseView.Sessions => _active.All;

    /// <summary>True between <see cref="StartAsync"/> and <see cref="StopAsync"/>.</summary>
    public bool IsRunning => _loop.IsRunning;

    /// <summary>True when this instance holds the session's lease and it is locally valid; no round trip.</summary>
    public bool IsOwned(string sessionId) => GetState(sessionId) == LeaseState.Owned;

    /// <summary>The lease's state as this instance sees it now.</summary>
    public LeaseState GetState(string sessionId) => _table.State(sessionId, _time.GetTimestamp());

    /// <summary>The lease of <paramref name="sessionId"/> when this instance holds it (Owned or Uncertain).</summary>
    public bool TryGetLease(string sessionId, out LeaseSnapshot lease) => _table.TryGet(sessionId, _time.GetTimestamp(), out lease);

    /// <summary>Every lease this instance holds and has not lost.</summary>
    public IReadOnlyList<LeaseSnapshot> OwnedSessions() => _table.Held(_time.GetTimestamp());

    /// <summary>Checks ownership against Redis now (one round trip): locally Owned and Redis still holds this value and token.</summary>
    public async Task<bool> IsOwnedStrictAsync(string sessionId, CancellationToken cancellationToken = default) =>
        TryGetLease(sessionId, out var lease) && lease.State == LeaseState.Owned
        && await _sender.HoldsAsync(sessionId, lease.Token, cancellationToken).ConfigureAwait(false) && IsOwned(sessionId);

    void ILeaseView.PollStarted(string sessionId, long token, long at, bool record) => _table.PollStarted(sessionId, token, at, record);

    bool ILeaseView.TryGetPreviousPoll(string sessionId, long token, out long at) => _table.TryGetPreviousPoll(sessionId, token, out at);

    /// <summary>Registers, subscribes to fleet events, runs the first cycle and starts the loop. Redis being down does not fail it.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_loop.IsRunning)
        {
            throw new InvalidOperationException($"Lease manager {InstanceId} is already running.");
        }
        _sender.Open();
        LeaseLog.Registered(_logger, InstanceId, Options.KeyPrefix, Options.LeaseTtl, Options.RenewInterval);
        await _fleet.StartAsync(cancellationToken).ConfigureAwait(false);
        await RunCycleAsync(cancellationToken).ConfigureAwait(false);
        _loop.Start(CycleStepAsync, e =>
        {
            // Anything unexpected must not end the loop: the instance would stop heartbeating while still registered.
            LeaseLog.CycleFailed(_logger, e, InstanceId, _table.Count);
            return _table.NextWake(_time.GetTimestamp(), Options.RetryInterval);
        });
    }

    /// <summary>
    /// Stops: ends the loop (a cycle in flight finishes first), then releases every lease and deregisters in one round
    /// trip (bounded by ShutdownTimeout) that also deletes whatever this instance's index in Redis names, including
    /// what a cycle still in flight acquired. Never throws for Redis or the budget: the result says what is left.
    /// </summary>
    /// <param name="cancellationToken">The stop's budget: when it runs out, the stop stops waiting and reports what is left.</param>
    public Task<LeaseStopResult> StopAsync(CancellationToken cancellationToken = default) => StopCoreAsync(release: true, cancellationToken);

    /// <summary>What the last stop released and left to expire; null before a stop has finished.</summary>
    public LeaseStopResult? LastStop { get; private set; }

    /// <summary>
    /// Stops without releasing or deregistering (leases dropped locally, left to expire with the heartbeat): for a host
    /// whose polls still run after their drain, as a release would let another instance poll alongside them.
    /// </summary>
    internal Task<LeaseStopResult> StopWithoutReleaseAsync(CancellationToken cancellationToken) => StopCoreAsync(release: false, cancellationToken);

    private async Task<LeaseStopResult> StopCoreAsync(bool release, CancellationToken cancellationToken)
    {
        var gated = false;
        try
        {
            await _loop.StopAsync(Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
            await _fleet.StopAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            gated = await _sender.EnterAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The budget ran out while a cycle was in flight: stop without it. Scripts on one connection run in send
            // order, so the stop request still runs after that cycle and deletes what it acquired.
        }
        var events = new List<LeaseEvent>();
        try
        {
            return LastStop = await _sender.LeaveAsync(_table.TakeAll(LeaseReasons.Shutdown, events), release, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _notifier.Raise(events, this, LeaseChanged);
            if (gated)
            {
                _sender.Exit();
            }
        }
    }

    /// <summary>Acquires one session's lease now if nobody live holds it (one round trip; the loop does this on its own): the token, or the holder.</summary>
    public async Task<LeaseAcquireResult> TryAcquireAsync(string sessionId, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        if (TryGetLease(sessionId, out var held) && held.State == LeaseState.Owned)
        {
            return new LeaseAcquireResult(true, held.Token, InstanceId);
        }
        var outcome = (await RoundTripAsync(new LeasePlan([sessionId], []), cancellationToken).ConfigureAwait(false)).Response!.Acquire[0];
        return outcome.Token > 0
            ? new LeaseAcquireResult(true, outcome.Token, InstanceId)
            : new LeaseAcquireResult(false, 0, LeaseValue.TryParse(outcome.Holder, out var owner, out _) ? owner : outcome.Holder ?? "");
    }

    /// <summary>Releases one lease (compare owner and token, delete, announce; reason logged and tagged on metrics): true when Redis held it. It stops counting as owned before the request is sent.</summary>
    public async Task<bool> ReleaseAsync(string sessionId, string reason = LeaseReasons.Requested, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        if (_table.State(sessionId, _time.GetTimestamp()) == LeaseState.None)
        {
            return false;
        }
        var sent = await RoundTripAsync(new LeasePlan([], [(sessionId, reason)]), cancellationToken).ConfigureAwait(false);
        return sent.Request.Release.Where((r, i) => r.SessionId == sessionId && sent.Response!.Released[i]).Any();
    }

    /// <summary>Runs one cycle now (cycles never overlap). Redis failures do not throw; they are logged, counted and reported.</summary>
    public Task<LeaseCycleResult> RunCycleAsync(CancellationToken cancellationToken = default) =>
        _sender.GatedAsync(() => RunCycleCoreAsync(cancellationToken), cancellationToken);

    /// <summary>Runs one cycle now if started and not stopping, else returns null: a timer trigger during a stop must not register again.</summary>
    /// <remarks>StopAsync clears the loop before it takes the gate, so a trigger queued behind its release sees it.</remarks>
    internal Task<LeaseCycleResult?> RunCycleIfRunningAsync(CancellationToken cancellationToken) =>
        _sender.GatedAsync(async () => !_loop.IsRunning ? null : await RunCycleCoreAsync(cancellationToken).ConfigureAwait(false), cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await (_loop.IsRunning ? StopAsync() : Task.CompletedTask).ConfigureAwait(false);
        _sender.Dispose();
    }

    private static BalancedPlanner DefaultPlanner(PollLeaseOptions options, TimeProvider? time, ILoggerFactory? loggerFactory) =>
        new(options?.BalanceEpsilon ?? throw new ArgumentNullException(nameof(options)), time ?? TimeProvider.System, PlannerTimings.From(options),
            loggerFactory?.CreateLogger("PollLease.Assignment"));

    /// <summary>One request outside the cycle (acquire or release now); throws what the round trip threw.</summary>
    private Task<Sent> RoundTripAsync(LeasePlan plan, CancellationToken cancellationToken) => _sender.GatedAsync(async () =>
    {
        var events = new List<LeaseEvent>();
        var sent = await _sender.SendAsync(_sender.Beat, plan, events, cancellationToken).ConfigureAwait(false);
        _notifier.Raise(events, this, LeaseChanged);
        sent.Error?.Throw();
        return sent;
    }, cancellationToken);

    /// <summary>Reads the session source with the catalog version the last cycle saw; a failing source keeps the previous sessions.</summary>
    private async Task RefreshSessionsAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _active.RefreshAsync(_sender.CatalogVersion, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LeaseLog.SessionSourceFailed(_logger, e, InstanceId);
        }
    }

    /// <summary>One cycle: plan, one await (send and apply), raise.</summary>
    private async Task<LeaseCycleResult> RunCycleCoreAsync(CancellationToken cancellationToken)
    {
        using var activity = PollLeaseTelemetry.ActivitySource.StartActivity("polllease.cycle");
        activity?.SetTag("polllease.instance", InstanceId);
        var events = new List<LeaseEvent>();
        _table.SweepDeadlines(_time.GetTimestamp(), events);
        await RefreshSessionsAsync(cancellationToken).ConfigureAwait(false);
        // An unregistered instance registers (and learns the fleet) in a round trip of its own first: planning without
        // the fleet's view would make every session look like its own.
        var sent = _sender.Registered ? null : await _sender.SendAsync(HeartbeatMode.Register, new LeasePlan([], []), events, cancellationToken).ConfigureAwait(false);
        if (sent?.Response is not null || sent is null)
        {
            var plan = _planner.Plan(_table.PlanInput(ActiveSessions, _time.GetTimestamp()));
            sent = await _sender.SendAsync(HeartbeatMode.Beat, plan, events, cancellationToken).ConfigureAwait(false);
        }
        _notifier.Raise(events, this, LeaseChanged);
        var elapsed = _time.GetElapsedTime(sent.At);
        var (lost, released) = (events.Count(e => e.Kind == LeaseEventKind.Lost), sent.Request.Release.Count);
        if (sent.Applied is not { } applied)
        {
            activity?.SetStatus(ActivityStatusCode.Error);
            return new LeaseCycleResult(false, 0, 0, lost, released, LiveNodes.Count, elapsed);
        }
        _notifier.CycleDuration(elapsed);
        activity?.SetTag("polllease.acquired", applied.Acquired);
        return new LeaseCycleResult(true, applied.Acquired, applied.Renewed, lost, released, LiveNodes.Count, elapsed);
    }

    /// <summary>One pass of the loop: a cycle, then sleep until the next one, a deadline, a foreign expiry or a wake-up.</summary>
    private async Task<TimeSpan> CycleStepAsync(CancellationToken stopping)
    {
        // Not cancelled by the stop: a cycle in flight finishes (bounded by OperationTimeout), so the stop's release
        // list includes what it acquired.
        var delay = (await RunCycleAsync(CancellationToken.None).ConfigureAwait(false)).Succeeded ? Options.CycleInterval : Options.RetryInterval;
        return _table.NextWake(_time.GetTimestamp(), delay);
    }
}
