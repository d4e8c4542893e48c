using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PollLease.Coordination;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Election;

/// <summary>
/// Leader election for one role over the fleet's Redis. The key <c>{prefix}:leader:{role}</c> holds the lease value
/// <c>id|token</c>, with tokens minted like lease tokens; it is taken atomically when absent, renewed by a
/// compare-and-set (a mismatch demotes at once), and deleted on release. The leader stops acting at
/// <c>sent time of its last successful renew + RenewDeadline</c>, measured on the local monotonic clock, which the
/// validator keeps well before the key can expire: by the time anyone else can be elected, the old leader has
/// already demoted itself, even when its loop is paused. Writes guarded by the role should still carry
/// <see cref="Token"/> and be fenced on it (<see cref="ValidateTokenAsync(long, CancellationToken)"/> right before
/// a critical operation, or a fenced script).
/// </summary>
public sealed class LeaderElection : IAsyncDisposable
{
    private readonly IElectionStore _store;
    private readonly ElectionOptions _options;
    private readonly ElectionCallbacks _callbacks;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ElectionMetrics _metrics;
    private readonly CircuitBreaker _breaker;
    private readonly Leadership _leadership;
    private readonly LeadershipState _state;
    private readonly HealthGate _health;
    private readonly BackgroundLoop _loop;
    private readonly ElectionSignals _signals;
    private long _lastValidation; // used by the loop only

    private int _started;

    /// <summary>Creates an election; <paramref name="options"/> are validated here (an invalid value throws, naming the field and rule).</summary>
    /// <param name="redis">The connection (shared with the leases is fine).</param>
    /// <param name="options">Role, instance and timings.</param>
    /// <param name="callbacks">OnPromote, OnDemote, OnNewLeader and the health check; all optional.</param>
    /// <param name="timeProvider">Clock for every deadline and delay.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="meterFactory">Metrics; a private meter when null.</param>
    public LeaderElection(
        IConnectionMultiplexer redis,
        ElectionOptions options,
        ElectionCallbacks? callbacks = null,
        TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null,
        IMeterFactory? meterFactory = null)
        : this(redis, options, callbacks, timeProvider, loggerFactory, meterFactory, store: null)
    {
    }

    /// <summary>As the public constructor, with the Redis calls going through <paramref name="store"/> when given.</summary>
    internal LeaderElection(
        IConnectionMultiplexer redis,
        ElectionOptions options,
        ElectionCallbacks? callbacks,
        TimeProvider? timeProvider,
        ILoggerFactory? loggerFactory,
        IMeterFactory? meterFactory,
        Func<ElectionStore, IElectionStore>? store)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ElectionOptionsValidator.ThrowIfInvalid(options);
        _options = options.WithRole(options.Role); // a private copy: later changes by the caller do not apply
        _callbacks = callbacks ?? new ElectionCallbacks();
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollLease.Election");
        var redisStore = new ElectionStore(redis, _options, _time);
        Key = redisStore.Key;
        _store = store is null ? redisStore : store(redisStore);
        _breaker = new CircuitBreaker(_options.CircuitBreakerThreshold, _options.CircuitBreakDuration, _time);
        _metrics = new ElectionMetrics(meterFactory, _options.Role, _options.InstanceId, () => IsLeader);
        var context = new ElectionContext(_options, _time, _logger, _metrics);
        _health = new HealthGate(_callbacks.HealthCheck, context);
        _loop = new BackgroundLoop(_time);
        _leadership = new Leadership(_callbacks, _loop.Wake, context);
        _state = _leadership.State;
        _signals = new ElectionSignals(redis, _leadership, _loop.Wake, context);
    }

    /// <summary>The role.</summary>
    public string Role => _options.Role;

    /// <summary>This candidate's id.</summary>
    public string InstanceId => _options.InstanceId;

    /// <summary>
    /// True while this instance leads: it won the key and its renew deadline (and, when disconnected, its grace
    /// period) has not passed. Evaluated against the clock on every read, so it turns false at the deadline even
    /// when the loop or the timer is late.
    /// </summary>
    public bool IsLeader => _state.IsLeader;

    /// <summary>The leader last observed (this instance included), or null when none is known.</summary>
    public string? CurrentLeader => _state.CurrentLeader;

    /// <summary>The fencing token of the current term while <see cref="IsLeader"/>, else 0.</summary>
    public long Token => _state.Token;

    /// <summary>A snapshot for status pages and <see cref="RoleManager"/>.</summary>
    public ElectionStatus Status
    {
        get
        {
            var token = Token;
            return new ElectionStatus(Role, InstanceId, token != 0, CurrentLeader, token, _loop.IsRunning, _breaker.IsOpen);
        }
    }

    /// <summary>The Redis key of this role.</summary>
    internal RedisKey Key { get; }

    /// <summary>Subscribes to release announcements, watches the connection and starts the election loop (one per election).</summary>
    /// <param name="cancellationToken">Cancels the start.</param>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException($"Election {Role}/{InstanceId} was already started; create a new one.");
        }
        ElectionLog.Started(_logger, Role, InstanceId, _options.Ttl, _options.RenewDeadline);
        await _signals.StartAsync(cancellationToken).ConfigureAwait(false);
        _leadership.Start();
        _loop.Start(StepAsync, e => StoreFailed(e, "loop"));
    }

    /// <summary>
    /// Stops the election: ends the loop, demotes (OnDemote runs with reason <c>stopped</c>), deletes the key when
    /// asked and still held, and waits for OnDemote up to <see cref="ElectionStopOptions.DemoteTimeout"/>. Returns true when
    /// OnDemote finished (or there was nothing to wait for) in time.
    /// </summary>
    /// <param name="options">Key deletion and the OnDemote wait; defaults when null.</param>
    /// <param name="cancellationToken">Abandons the waits (the key then expires by its TTL).</param>
    public async Task<bool> StopAsync(ElectionStopOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ElectionStopOptions();
        if (!_loop.IsRunning)
        {
            return true;
        }
        // A step is one bounded Redis call or a health check bounded alike: the loop ends within about that.
        if (!await _loop.StopAsync(_options.OperationTimeout + _options.OperationTimeout, cancellationToken).ConfigureAwait(false))
        {
            ElectionLog.StoreFailed(_logger, new TimeoutException("The election loop did not end in time."), Role, InstanceId, "stop", 1);
        }
        await _signals.StopAsync(cancellationToken).ConfigureAwait(false);

        _leadership.Demote(DemotionReasons.Stopped, null);
        var deleted = false;
        var demoteCompleted = true;
        try
        {
            if (options.DeleteKey)
            {
                // By owner, not by the value last seen: an acquire the stopped loop no longer waited for may still have
                // run (it was sent before this, on the same connection) and won a term this instance never heard of.
                deleted = await TryReleaseAsync(LeaseValue.OwnerPrefix(InstanceId), cancellationToken).ConfigureAwait(false);
            }
            if (_state.DemoteDone is { } demoteDone)
            {
                demoteCompleted = await CompletesWithinAsync(demoteDone, options.DemoteTimeout, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            // Even when the caller gave up: no more callbacks after this, and the dispatcher ends after the queue.
            _leadership.Close();
        }
        if (demoteCompleted)
        {
            demoteCompleted = await CompletesWithinAsync(_leadership.CallbacksDone, _options.CallbackTimeout, cancellationToken).ConfigureAwait(false);
        }
        ElectionLog.Stopped(_logger, Role, InstanceId, deleted, demoteCompleted);
        return demoteCompleted;
    }

    /// <summary>
    /// Checks against Redis, right before a critical operation, that this instance still leads with the
    /// current token. False when not leading, when the key holds something else (which also demotes), or when
    /// Redis cannot confirm it.
    /// </summary>
    /// <param name="cancellationToken">Cancels the check.</param>
#pragma warning disable RS0026 // Both overloads shipped with optional tokens; ValidateTokenAsync() and ValidateTokenAsync(token) stay unambiguous.
    public Task<bool> ValidateTokenAsync(CancellationToken cancellationToken = default) => ValidateTokenAsync(Token, cancellationToken);

    /// <summary>
    /// True only when <paramref name="token"/> is this instance's current token, it still leads locally, and the key
    /// in Redis holds this instance with that token. A stale token (from an earlier term) is always rejected.
    /// </summary>
    /// <param name="token">The token to check, e.g. the one handed to OnPromote.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    public async Task<bool> ValidateTokenAsync(long token, CancellationToken cancellationToken = default)
#pragma warning restore RS0026
    {
        if (_state.ValueOf(token) is not { } expected)
        {
            return false;
        }
        string? current;
        try
        {
            current = await _store.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _metrics.Failed("validate");
            ElectionLog.StoreFailed(_logger, e, Role, InstanceId, "validate", 1);
            return false;
        }
        if (current != expected)
        {
            _leadership.Demote(DemotionReasons.Lost, expected);
            _leadership.Observe(current);
            return false;
        }
        return IsLeader;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(new ElectionStopOptions { DemoteTimeout = _options.CallbackTimeout }).ConfigureAwait(false);
        await _leadership.DisposeAsync().ConfigureAwait(false);
    }

    private Task<TimeSpan> StepAsync(CancellationToken cancellationToken) =>
        _state.Value is not null ? LeadAsync(cancellationToken) : FollowAsync(cancellationToken);

    /// <summary>One follower step: try to take the key; returns how long to wait before the next step.</summary>
    private async Task<TimeSpan> FollowAsync(CancellationToken cancellationToken)
    {
        if (_state.Stale is { } stale && await TryReleaseAsync(stale, cancellationToken).ConfigureAwait(false))
        {
            // Our own key outlived our term (a missed deadline or a disconnect): hand it over now rather than at its TTL.
            _state.ForgetStale();
        }
        if (_breaker.IsOpen)
        {
            return _breaker.RemainingOpen;
        }
        if (!await _health.PassesAsync(cancellationToken).ConfigureAwait(false))
        {
            // An unhealthy candidate does not stand: it would win the key only to step down again.
            return Retry();
        }

        var sent = _time.GetTimestamp();
        AcquireReply reply;
        try
        {
            reply = await _store.AcquireAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return StoreFailed(e, "acquire");
        }
        _breaker.RecordSuccess();
        if (reply.Acquired)
        {
            _health.Reset();
            _lastValidation = _time.GetTimestamp();
            _leadership.Promote(reply.Token, sent);
            return _options.RenewInterval;
        }
        _leadership.Observe(reply.Holder);
        if (_state.Stale is { } old && reply.Holder != old)
        {
            _state.ForgetStale();
        }
        var retry = Retry();
        // Stand again as soon as the key can have expired, rather than up to a retry period later.
        return reply.HolderTtl > TimeSpan.Zero && reply.HolderTtl < retry ? reply.HolderTtl : retry;
    }

    /// <summary>One leader step: health check, renew (compare-and-set), periodic validation; returns the delay to the next step.</summary>
    private async Task<TimeSpan> LeadAsync(CancellationToken cancellationToken)
    {
        if (_state.Value is not { } value)
        {
            return TimeSpan.Zero;
        }
        if (!IsLeader)
        {
            _leadership.Demote(_state.DeadlineReason, value);
            return TimeSpan.Zero;
        }
        if (!await _health.PassesAsync(cancellationToken).ConfigureAwait(false))
        {
            // Step down on purpose: give the key back so a healthy candidate takes over now, not at the TTL.
            _leadership.Demote(DemotionReasons.Unhealthy, value);
            await TryReleaseAsync(value, cancellationToken).ConfigureAwait(false);
            return Retry();
        }

        var sent = _time.GetTimestamp();
        RenewReply reply;
        try
        {
            reply = await _store.RenewAsync(value, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            StoreFailed(e, "renew");
            var retry = Retry();
            return retry < _options.RenewInterval ? retry : _options.RenewInterval;
        }
        _breaker.RecordSuccess();
        _metrics.Heartbeat(_time.GetElapsedTime(sent));
        if (!reply.Renewed)
        {
            _leadership.Demote(DemotionReasons.Lost, value);
            _leadership.Observe(reply.Holder);
            return TimeSpan.Zero;
        }
        _leadership.Renewed(value, sent);
        if (_time.GetElapsedTime(_lastValidation) >= _options.ValidationInterval)
        {
            // Besides the compare-and-set, re-read the key now and then and demote on any mismatch.
            _lastValidation = _time.GetTimestamp();
            await ValidateTokenAsync(cancellationToken).ConfigureAwait(false);
        }
        return _options.RenewInterval;
    }

    private TimeSpan Retry() => ElectionBackoff.Jittered(_options.RetryPeriod, Random.Shared.NextDouble());

    private TimeSpan StoreFailed(Exception e, string operation)
    {
        _metrics.Failed(operation);
        var opened = _breaker.RecordFailure();
        ElectionLog.StoreFailed(_logger, e, Role, InstanceId, operation, _breaker.ConsecutiveFailures);
        if (opened)
        {
            ElectionLog.CircuitOpened(_logger, Role, InstanceId, _breaker.ConsecutiveFailures, _options.CircuitBreakDuration);
            return _options.CircuitBreakDuration;
        }
        return ElectionBackoff.Compute(_breaker.ConsecutiveFailures, _options.RetryPeriod, _options.MaxBackoff, Random.Shared.NextDouble());
    }

    private async Task<bool> TryReleaseAsync(string value, CancellationToken cancellationToken)
    {
        try
        {
            return await _store.ReleaseAsync(value, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
        {
            _metrics.Failed("release");
            ElectionLog.StoreFailed(_logger, e, Role, InstanceId, "release", 1);
            return false;
        }
    }

    private async Task<bool> CompletesWithinAsync(Task task, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}
