using System.Diagnostics.Metrics;
using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PollLease.Coordination;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Election;

/// <summary>
/// Leader election for one role over the fleet's Redis (seed 003 over Redis instead of NATS KV). The key
/// <c>{prefix}:leader:{role}</c> holds <c>id|token</c>; it is taken atomically when absent, renewed by a
/// compare-and-set (a mismatch demotes at once), and deleted on release. The leader stops acting at
/// <c>sent time of its last successful renew + RenewDeadline</c>, measured on the local monotonic clock, which the
/// validator keeps well before the key can expire: by the time anyone else can be elected, the old leader has
/// already demoted itself, even when its loop is paused. Writes guarded by the role should still carry
/// <see cref="Token"/> and be fenced on it (<see cref="ValidateTokenAsync(long, CancellationToken)"/> right before
/// a critical operation, or a fenced script).
/// </summary>
public sealed class LeaderElection : IAsyncDisposable
{
    private static readonly RedisScript AcquireScript = new(ElectionScripts.Acquire);
    private static readonly RedisScript RenewScript = new(ElectionScripts.Renew);
    private static readonly RedisScript ReleaseScript = new(ElectionScripts.Release);

    private readonly IConnectionMultiplexer _redis;
    private readonly ElectionOptions _options;
    private readonly ElectionCallbacks _callbacks;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ElectionMetrics _metrics;
    private readonly RedisKeys _keys;
    private readonly RedisKey _key;
    private readonly RedisKey _fenceKey;
    private readonly WakeSignal _wake = new();
    private readonly CircuitBreaker _breaker;
    private readonly Channel<Func<Task>> _dispatch = Channel.CreateUnbounded<Func<Task>>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _gate = new();
    private readonly ITimer _deadlineTimer;

    // Guarded by _gate.
    private bool _leading;
    private long _token;
    private string? _value;
    private long _renewDeadline;
    private long? _disconnectedAt;
    private string? _currentLeader;
    private CancellationTokenSource? _leadership;
    private TaskCompletionSource? _demoteDone;
    private Task? _promoteRun;

    // Used by the loop only.
    private string? _staleValue;
    private int _healthFailures;
    private long _lastValidation;

    private CancellationTokenSource? _loopCts;
    private Task? _loop;
    private Task? _dispatcher;
    private ChannelMessageQueue? _subscription;
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
    {
        ArgumentNullException.ThrowIfNull(redis);
        ElectionOptionsValidator.ThrowIfInvalid(options);
        _redis = redis;
        _options = options.WithRole(options.Role); // a private copy: later changes by the caller do not apply
        _callbacks = callbacks ?? new ElectionCallbacks();
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollLease.Election");
        _keys = new RedisKeys(_options.KeyPrefix);
        _key = _keys.Leader(_options.Role);
        _fenceKey = _keys.LeaderPrefix + _options.Role + ":fence";
        _breaker = new CircuitBreaker(_options.CircuitBreakerThreshold, _options.CircuitBreakDuration, _time);
        _metrics = new ElectionMetrics(meterFactory, _options.Role, _options.InstanceId, () => IsLeader);
        _deadlineTimer = _time.CreateTimer(_ => CheckDeadline(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
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
    public bool IsLeader
    {
        get
        {
            lock (_gate)
            {
                return _leading && _time.GetTimestamp() < EffectiveDeadline();
            }
        }
    }

    /// <summary>The leader last observed (this instance included), or null when none is known.</summary>
    public string? CurrentLeader
    {
        get
        {
            lock (_gate)
            {
                return _currentLeader;
            }
        }
    }

    /// <summary>The fencing token of the current term while <see cref="IsLeader"/>, else 0.</summary>
    public long Token
    {
        get
        {
            lock (_gate)
            {
                return _leading && _time.GetTimestamp() < EffectiveDeadline() ? _token : 0;
            }
        }
    }

    /// <summary>A snapshot for status pages and <see cref="RoleManager"/>.</summary>
    public ElectionStatus Status
    {
        get
        {
            var leading = IsLeader;
            return new ElectionStatus(Role, InstanceId, leading, CurrentLeader, leading ? Token : 0, _loop is not null, _breaker.IsOpen);
        }
    }

    /// <summary>The Redis key of this role.</summary>
    internal RedisKey Key => _key;

    /// <summary>Test hook: awaited by the leader before each renew, to simulate a paused process.</summary>
    internal Func<CancellationToken, Task>? BeforeRenew { get; set; }

    /// <summary>Subscribes to release announcements, watches the connection and starts the election loop (one per election).</summary>
    /// <param name="cancellationToken">Cancels the start.</param>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException($"Election {Role}/{InstanceId} was already started; create a new one.");
        }
        ElectionLog.Started(_logger, Role, InstanceId, _options.Ttl, _options.RenewDeadline);
        _redis.ConnectionFailed += OnConnectionFailed;
        _redis.ConnectionRestored += OnConnectionRestored;
        try
        {
            _subscription = await _redis.GetSubscriber().SubscribeAsync(_keys.Events).WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
            _subscription.OnMessage(OnFleetEvent);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Without the subscription followers still notice a released key at their next periodic check.
            ElectionLog.StoreFailed(_logger, e, Role, InstanceId, "subscribe", 1);
        }
        _dispatcher = Task.Run(DispatchAsync, CancellationToken.None);
        var cts = new CancellationTokenSource();
        _loopCts = cts;
        _loop = Task.Run(() => RunAsync(cts.Token), CancellationToken.None);
    }

    /// <summary>
    /// Stops the election: ends the loop, demotes (OnDemote runs with reason <c>stopped</c>), deletes the key when
    /// asked and still held, and waits for OnDemote up to <see cref="StopOptions.DemoteTimeout"/>. Returns true when
    /// OnDemote finished (or there was nothing to wait for) in time.
    /// </summary>
    /// <param name="options">Key deletion and the OnDemote wait; defaults when null.</param>
    /// <param name="cancellationToken">Abandons the waits (the key then expires by its TTL).</param>
    public async Task<bool> StopAsync(StopOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new StopOptions();
        var loop = _loop;
        var cts = _loopCts;
        if (loop is null || cts is null)
        {
            return true;
        }
        _loop = null;
        _loopCts = null;
        await cts.CancelAsync().ConfigureAwait(false);
        await loop.ConfigureAwait(false);
        cts.Dispose();
        _redis.ConnectionFailed -= OnConnectionFailed;
        _redis.ConnectionRestored -= OnConnectionRestored;
        if (_subscription is not null)
        {
            try
            {
                await _subscription.UnsubscribeAsync().WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                ElectionLog.StoreFailed(_logger, e, Role, InstanceId, "unsubscribe", 1);
            }
        }

        Demote(DemotionReasons.Stopped);
        var deleted = false;
        var demoteCompleted = true;
        try
        {
            if (options.DeleteKey)
            {
                // By owner, not by the value last seen: an acquire the stopped loop no longer waited for may still have
                // run (it was sent before this, on the same connection) and won a term this instance never heard of.
                deleted = await TryReleaseAsync(InstanceId + "|", cancellationToken).ConfigureAwait(false);
            }
            Task? demoteDone;
            lock (_gate)
            {
                demoteDone = _demoteDone?.Task;
            }
            if (demoteDone is not null)
            {
                demoteCompleted = await CompletesWithinAsync(demoteDone, options.DemoteTimeout, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            // Even when the caller gave up: no more callbacks after this, and the dispatcher ends after the queue.
            _dispatch.Writer.TryComplete();
            _deadlineTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        if (demoteCompleted && _dispatcher is not null)
        {
            demoteCompleted = await CompletesWithinAsync(_dispatcher, _options.CallbackTimeout, cancellationToken).ConfigureAwait(false);
        }
        ElectionLog.Stopped(_logger, Role, InstanceId, deleted, demoteCompleted);
        return demoteCompleted;
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

    /// <summary>
    /// Checks against Redis, right before a critical operation (seed 7.3), that this instance still leads with the
    /// current token. False when not leading, when the key holds something else (which also demotes), or when
    /// Redis cannot confirm it.
    /// </summary>
    /// <param name="cancellationToken">Cancels the check.</param>
    public Task<bool> ValidateTokenAsync(CancellationToken cancellationToken = default) => ValidateTokenAsync(Token, cancellationToken);

    /// <summary>
    /// True only when <paramref name="token"/> is this instance's current token, it still leads locally, and the key
    /// in Redis holds this instance with that token. A stale token (from an earlier term) is always rejected.
    /// </summary>
    /// <param name="token">The token to check, e.g. the one handed to OnPromote.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    public async Task<bool> ValidateTokenAsync(long token, CancellationToken cancellationToken = default)
    {
        string? expected;
        lock (_gate)
        {
            expected = _leading && _token == token && token > 0 ? _value : null;
        }
        if (expected is null || !IsLeader)
        {
            return false;
        }
        RedisValue current;
        try
        {
            current = await _redis.GetDatabase().StringGetAsync(_key).WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _metrics.Failed("validate");
            ElectionLog.StoreFailed(_logger, e, Role, InstanceId, "validate", 1);
            return false;
        }
        if (current != expected)
        {
            DemoteIfCurrent(expected, DemotionReasons.Lost);
            ObserveHolder(current.IsNull ? null : current.ToString());
            return false;
        }
        return IsLeader;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(new StopOptions { DemoteTimeout = _options.CallbackTimeout }).ConfigureAwait(false);
        await _deadlineTimer.DisposeAsync().ConfigureAwait(false);
        lock (_gate)
        {
            _leadership?.Dispose();
            _leadership = null;
        }
    }

    private long EffectiveDeadline()
    {
        var grace = (long)(_options.DisconnectGracePeriod.TotalSeconds * _time.TimestampFrequency);
        return _disconnectedAt is { } at ? Math.Min(_renewDeadline, at + grace) : _renewDeadline;
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                bool leading;
                lock (_gate)
                {
                    leading = _leading;
                }
                var delay = leading ? await LeadAsync(cancellationToken).ConfigureAwait(false) : await FollowAsync(cancellationToken).ConfigureAwait(false);
                await _wake.WaitAsync(delay, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The loop must outlive any surprise (a malformed reply, a bug): log, back off, go on.
            catch (Exception e)
#pragma warning restore CA1031
            {
                var delay = StoreFailed(e, "loop");
                try
                {
                    await _wake.WaitAsync(delay, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>One follower step: try to take the key; returns how long to wait before the next step.</summary>
    private async Task<TimeSpan> FollowAsync(CancellationToken cancellationToken)
    {
        if (_staleValue is { } stale && await TryReleaseAsync(stale, cancellationToken).ConfigureAwait(false))
        {
            // Our own key outlived our term (a missed deadline or a disconnect): hand it over now rather than at its TTL.
            _staleValue = null;
        }
        if (_breaker.IsOpen)
        {
            return _breaker.RemainingOpen;
        }
        if (_callbacks.HealthCheck is not null && !await CheckHealthAsync(cancellationToken).ConfigureAwait(false))
        {
            // An unhealthy candidate does not stand: it would win the key only to step down again.
            return ElectionBackoff.Jittered(_options.RetryPeriod, Random.Shared.NextDouble());
        }

        var sent = _time.GetTimestamp();
        RedisResult[] result;
        try
        {
            result = (RedisResult[])(await AcquireScript.EvaluateAsync(_redis.GetDatabase(), [_key, _fenceKey],
                    [InstanceId, (long)_options.Ttl.TotalMilliseconds, _keys.Events.ToString(), Role])
                .WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false))!;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return StoreFailed(e, "acquire");
        }
        _breaker.RecordSuccess();
        if ((long)result[0] == 1)
        {
            _staleValue = null;
            Promote(long.Parse((string)result[1]!, CultureInfo.InvariantCulture), sent);
            return _options.RenewInterval;
        }
        var holder = (string)result[1]!;
        var pttl = (long)result[2];
        ObserveHolder(holder);
        if (_staleValue is not null && holder != _staleValue)
        {
            _staleValue = null;
        }
        var retry = ElectionBackoff.Jittered(_options.RetryPeriod, Random.Shared.NextDouble());
        // Stand again as soon as the key can have expired, rather than up to a retry period later.
        return pttl > 0 && TimeSpan.FromMilliseconds(pttl) < retry ? TimeSpan.FromMilliseconds(pttl) : retry;
    }

    /// <summary>One leader step: health check, renew (compare-and-set), periodic validation; returns the delay to the next step.</summary>
    private async Task<TimeSpan> LeadAsync(CancellationToken cancellationToken)
    {
        if (BeforeRenew is { } hook)
        {
            await hook(cancellationToken).ConfigureAwait(false);
        }
        string value;
        lock (_gate)
        {
            if (!_leading || _value is null)
            {
                return TimeSpan.Zero;
            }
            value = _value;
        }
        if (!IsLeader)
        {
            DemoteIfCurrent(value, DeadlineReason());
            return TimeSpan.Zero;
        }
        if (_callbacks.HealthCheck is not null && !await CheckHealthAsync(cancellationToken).ConfigureAwait(false)
            && _healthFailures >= _options.HealthCheckFailureThreshold)
        {
            // Step down on purpose: give the key back so a healthy candidate takes over now, not at the TTL.
            DemoteIfCurrent(value, DemotionReasons.Unhealthy);
            if (await TryReleaseAsync(value, cancellationToken).ConfigureAwait(false))
            {
                _staleValue = null;
            }
            return ElectionBackoff.Jittered(_options.RetryPeriod, Random.Shared.NextDouble());
        }

        var sent = _time.GetTimestamp();
        RedisResult[] result;
        try
        {
            result = (RedisResult[])(await RenewScript.EvaluateAsync(_redis.GetDatabase(), [_key], [value, (long)_options.Ttl.TotalMilliseconds])
                .WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false))!;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            StoreFailed(e, "renew");
            var retry = ElectionBackoff.Jittered(_options.RetryPeriod, Random.Shared.NextDouble());
            return retry < _options.RenewInterval ? retry : _options.RenewInterval;
        }
        _breaker.RecordSuccess();
        _metrics.Heartbeat(_time.GetElapsedTime(sent));
        if ((long)result[0] != 1)
        {
            var holder = (string)result[1]!;
            DemoteIfCurrent(value, DemotionReasons.Lost);
            ObserveHolder(holder.Length == 0 ? null : holder);
            return TimeSpan.Zero;
        }
        lock (_gate)
        {
            if (_leading && _value == value && _time.GetTimestamp() < EffectiveDeadline())
            {
                _disconnectedAt = null; // a successful round trip proves the connection, even if the restored event was missed
                _renewDeadline = sent + Ticks(_options.RenewDeadline);
                ArmDeadlineTimer();
            }
        }

        if (_time.GetElapsedTime(_lastValidation) >= _options.ValidationInterval)
        {
            // Seed 7.2: besides the compare-and-set, re-read the key now and then and demote on any mismatch.
            _lastValidation = _time.GetTimestamp();
            await ValidateTokenAsync(cancellationToken).ConfigureAwait(false);
        }
        return _options.RenewInterval;
    }

    private async Task<bool> CheckHealthAsync(CancellationToken cancellationToken)
    {
        Exception? error = null;
        var healthy = false;
        try
        {
            healthy = await _callbacks.HealthCheck!(cancellationToken).WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // A user health check may throw anything; every exception counts as a failed check.
        catch (Exception e)
#pragma warning restore CA1031
        {
            error = e;
        }
        if (healthy)
        {
            _healthFailures = 0;
            return true;
        }
        _healthFailures++;
        _metrics.Failed("health");
        ElectionLog.HealthFailed(_logger, error, Role, InstanceId, _healthFailures, _options.HealthCheckFailureThreshold);
        return _healthFailures < _options.HealthCheckFailureThreshold;
    }

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
            var released = await ReleaseScript.EvaluateAsync(_redis.GetDatabase(), [_key], [value, _keys.Events.ToString(), InstanceId, Role])
                .WaitAsync(_options.OperationTimeout, _time, cancellationToken).ConfigureAwait(false);
            return (long)released == 1;
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ObjectDisposedException)
        {
            _metrics.Failed("release");
            ElectionLog.StoreFailed(_logger, e, Role, InstanceId, "release", 1);
            return false;
        }
    }

    private void Promote(long token, long sent)
    {
        var leadership = new CancellationTokenSource();
        lock (_gate)
        {
            _leading = true;
            _disconnectedAt = null;
            _token = token;
            _value = InstanceId + "|" + token.ToString(CultureInfo.InvariantCulture);
            _renewDeadline = sent + Ticks(_options.RenewDeadline);
            // The previous term's source is not disposed: its OnPromote may still hold (cancelled) registrations.
            _leadership = leadership;
            _healthFailures = 0;
            _lastValidation = _time.GetTimestamp();
            ArmDeadlineTimer();
        }
        _metrics.Promoted();
        ElectionLog.Promoted(_logger, Role, InstanceId, token);
        ObserveHolder(InstanceId + "|" + token.ToString(CultureInfo.InvariantCulture));
        var term = new ElectionTerm(Role, token, leadership.Token);
        if (_callbacks.OnPromote is { } onPromote)
        {
            _ = Enqueue(() =>
            {
                // Started, not awaited: OnPromote may run for the whole term; it learns the end from term.Leadership.
                var running = InvokeAsync("OnPromote", () => onPromote(term));
                lock (_gate)
                {
                    _promoteRun = running;
                }
                return Task.CompletedTask;
            });
        }
    }

    private string DeadlineReason()
    {
        lock (_gate)
        {
            return _disconnectedAt is not null && EffectiveDeadline() < _renewDeadline ? DemotionReasons.Disconnected : DemotionReasons.Deadline;
        }
    }

    private void DemoteIfCurrent(string value, string reason)
    {
        lock (_gate)
        {
            if (_value != value)
            {
                return;
            }
        }
        Demote(reason);
    }

    private void Demote(string reason)
    {
        CancellationTokenSource? leadership;
        long token;
        TaskCompletionSource demoteDone;
        lock (_gate)
        {
            if (!_leading)
            {
                return;
            }
            _leading = false;
            token = _token;
            if (reason is DemotionReasons.Deadline or DemotionReasons.Disconnected)
            {
                _staleValue = _value;
            }
            _value = null;
            _token = 0;
            leadership = _leadership;
            demoteDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _demoteDone = demoteDone;
            _deadlineTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        try
        {
            leadership?.Cancel();
        }
        catch (AggregateException e)
        {
            // A registration on the leadership token threw; the term has ended all the same.
            ElectionLog.CallbackFailed(_logger, e, Role, InstanceId, "OnPromote cancellation");
        }
        _metrics.Demoted(reason);
        ElectionLog.Demoted(_logger, Role, InstanceId, token, reason);
        var onDemote = _callbacks.OnDemote;
        var queued = Enqueue(async () =>
        {
            if (onDemote is null)
            {
                demoteDone.TrySetResult();
                return;
            }
            var running = RunDemoteAsync(onDemote, reason, demoteDone);
            await WaitBoundedAsync(running, "OnDemote").ConfigureAwait(false);
        });
        if (!queued)
        {
            demoteDone.TrySetResult();
        }
        _wake.Set();
    }

    private async Task RunDemoteAsync(Func<string, Task> onDemote, string reason, TaskCompletionSource done)
    {
        try
        {
            await InvokeAsync("OnDemote", () => onDemote(reason)).ConfigureAwait(false);
        }
        finally
        {
            done.TrySetResult();
        }
    }

    private void ObserveHolder(string? value)
    {
        if (value is null)
        {
            return;
        }
        var bar = value.LastIndexOf('|');
        if (bar <= 0)
        {
            ElectionLog.MalformedKey(_logger, Role, value);
            return;
        }
        var leader = value[..bar];
        lock (_gate)
        {
            if (_currentLeader == leader)
            {
                return;
            }
            _currentLeader = leader;
        }
        ElectionLog.NewLeader(_logger, Role, InstanceId, leader);
        if (_callbacks.OnNewLeader is { } onNewLeader)
        {
            _ = Enqueue(() => WaitBoundedAsync(InvokeAsync("OnNewLeader", () => onNewLeader(leader)), "OnNewLeader"));
        }
    }

    /// <summary>Queues a callback delivery; false once the election has stopped delivering callbacks.</summary>
    private bool Enqueue(Func<Task> work) => _dispatch.Writer.TryWrite(work);

    private async Task DispatchAsync()
    {
        await foreach (var work in _dispatch.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            await work().ConfigureAwait(false);
        }
    }

    private async Task WaitBoundedAsync(Task running, string name)
    {
        try
        {
            await running.WaitAsync(_options.CallbackTimeout, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            ElectionLog.CallbackSlow(_logger, Role, InstanceId, name, _options.CallbackTimeout);
        }
    }

    private async Task InvokeAsync(string name, Func<Task> callback)
    {
        try
        {
            // Task.Run: a callback that blocks synchronously must not hold up the dispatcher either.
            await Task.Run(callback).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // User callbacks may throw anything; it is logged and the election goes on.
        catch (Exception e)
#pragma warning restore CA1031
        {
            if (e is not OperationCanceledException)
            {
                _metrics.Failed("callback");
                ElectionLog.CallbackFailed(_logger, e, Role, InstanceId, name);
            }
        }
    }

    private void ArmDeadlineTimer()
    {
        var due = _time.GetElapsedTime(_time.GetTimestamp(), EffectiveDeadline());
        _deadlineTimer.Change(due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    private void CheckDeadline()
    {
        string? value;
        lock (_gate)
        {
            if (!_leading || _time.GetTimestamp() < EffectiveDeadline())
            {
                if (_leading)
                {
                    ArmDeadlineTimer();
                }
                return;
            }
            value = _value;
        }
        if (value is not null)
        {
            DemoteIfCurrent(value, DeadlineReason());
        }
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Interactive)
        {
            return;
        }
        bool leading;
        lock (_gate)
        {
            _disconnectedAt ??= _time.GetTimestamp();
            leading = _leading;
            if (leading)
            {
                ArmDeadlineTimer();
            }
        }
        ElectionLog.Disconnected(_logger, Role, InstanceId, leading, _options.DisconnectGracePeriod);
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Interactive)
        {
            return;
        }
        lock (_gate)
        {
            _disconnectedAt = null;
            if (_leading)
            {
                ArmDeadlineTimer();
            }
        }
        ElectionLog.Reconnected(_logger, Role, InstanceId);
        // The next step renews (leader: verifies the key is still ours, else demotes) or stands (follower) at once.
        _wake.Set();
    }

    private void OnFleetEvent(ChannelMessage message)
    {
        // leader-released|id|role: a follower stands at once instead of at its next periodic check.
        var parts = message.Message.ToString().Split('|');
        if (parts.Length == 3 && parts[0] == "leader-released" && parts[2] == Role && parts[1] != InstanceId)
        {
            _wake.Set();
        }
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);
}
