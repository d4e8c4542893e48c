using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Hosting;

/// <summary>
/// The instance's Redis connection, made in the background so that nothing on the host's start path waits for
/// Redis. The connection string is parsed when <see cref="Start"/> is called (a bad one fails the start at once);
/// the hooks (e.g. an Entra ID token) and the connect itself run on a background task, retried with capped,
/// jittered exponential backoff and logged on every failure until they succeed or the host stops.
/// </summary>
/// <remarks>
/// It is also the first hosted service, so the host stops it last: when the instance's stop ran out of budget (Redis
/// did not answer), it closes the connection without the polite QUIT, which would wait a whole sync timeout on a
/// silent link and delay the process's exit after the stop is over.
/// With AbortOnConnectFail=false a multiplexer is handed out even when Redis is down (it reconnects by itself),
/// so only a hook that throws (a token that cannot be had) keeps <see cref="GetAsync"/> waiting.
/// It is not a BackgroundService because the connect may have to begin before the host starts: an application that
/// resolves a Redis-backed service from the container first starts it through <see cref="TakeForContainer"/>.
/// </remarks>
internal sealed class PollLeaseConnection : IHostedService, IAsyncDisposable
{
    private readonly IOptions<PollLeaseOptions> _options;
    private readonly ShutdownBudget _budget;
    private readonly Func<IConnectionMultiplexer>? _external;
    private readonly IOptions<PollLeaseRedisOptions> _hooks;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource<IConnectionMultiplexer> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private readonly object _lock = new();
    private Task? _loop;
    private int _failures;
    private bool _handedOver;
    private int _disposed;

    /// <param name="options">The instance's options (connection string, instance id).</param>
    /// <param name="hooks">Callbacks run on the connection options before connecting.</param>
    /// <param name="budget">The instance's stop budget.</param>
    /// <param name="time">Clock for the retry delays.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="external">
    /// The application's own multiplexer (registered before AddPollLease), resolved on the background task; null to
    /// connect from <see cref="PollLeaseOptions.Redis"/>.
    /// </param>
    public PollLeaseConnection(
        IOptions<PollLeaseOptions> options,
        IOptions<PollLeaseRedisOptions> hooks,
        ShutdownBudget budget,
        TimeProvider time,
        ILoggerFactory loggerFactory,
        Func<IConnectionMultiplexer>? external = null)
    {
        _budget = budget;
        _external = external;
        // The application owns its multiplexer: never dispose it here.
        _handedOver = external is not null;
        // Read when first needed, not when built: the host builds its hosted services before its start-up validation,
        // which then reports every invalid section at once instead of only the first one read.
        _options = options;
        _hooks = hooks;
        _time = time;
        _logger = loggerFactory.CreateLogger("PollLease.Redis");
    }

    /// <summary>Failed attempts so far (a hook that threw, or a connect that threw).</summary>
    public int Failures => Volatile.Read(ref _failures);

    /// <summary>
    /// Starts connecting in the background, once (later calls do nothing). Throws at once, naming the setting, when
    /// the connection string is missing or does not parse: that is configuration, not an outage, and is never retried.
    /// </summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_loop is not null)
            {
                return;
            }
            if (_external is null)
            {
                RedisConnectionFactory.Parse(_options.Value);
            }
            _loop = Task.Run(() => ConnectLoopAsync(_stopping.Token), CancellationToken.None);
        }
    }

    Task IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        Start();
        return Task.CompletedTask;
    }

    async Task IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_budget.Spent && _external is null && _connected.Task.IsCompletedSuccessfully)
        {
            // Only when the stop ran out of time: a healthy link gets the normal close on dispose.
            await _connected.Task.Result.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
        }
    }

    /// <summary>Completes with the multiplexer once it exists; starts connecting if nothing did yet.</summary>
    /// <param name="cancellationToken">Abandons the wait (the connection attempts go on).</param>
    public Task<IConnectionMultiplexer> GetAsync(CancellationToken cancellationToken)
    {
        Start();
        return _connected.Task.WaitAsync(cancellationToken);
    }

    private async Task ConnectLoopAsync(CancellationToken stopping)
    {
        try
        {
            // Anything a hook or the connect throws (no managed identity yet, Entra ID unreachable, DNS): the instance
            // keeps trying rather than taking the worker down, and says so each time.
            var redis = await StartRetry.UntilDoneAsync(ConnectOnceAsync, (e, failures, delay) =>
            {
                Volatile.Write(ref _failures, failures);
                HostingLog.ConnectFailed(_logger, e, _options.Value.InstanceId ?? "", failures, delay);
            }, _time, stopping).ConfigureAwait(false);
            _connected.TrySetResult(redis);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            _connected.TrySetCanceled(stopping);
        }
    }

    private async Task<IConnectionMultiplexer> ConnectOnceAsync(CancellationToken stopping)
    {
        var connecting = _external is null
            ? RedisConnectionFactory.ConnectAsync(_options.Value, _hooks.Value, _logger)
            : Task.Run(_external, CancellationToken.None);
        try
        {
            return await connecting.WaitAsync(stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            await DisposeLateAsync(connecting).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The multiplexer for the container's <see cref="IConnectionMultiplexer"/> registration, which then owns (and
    /// disposes) it. The hosted services resolve it only after <see cref="GetAsync"/> completed, so on their path
    /// this never waits; an application that resolves a Redis-backed service itself before the first connect has
    /// finished waits here for it, as a synchronous container factory must.
    /// </summary>
    public IConnectionMultiplexer TakeForContainer()
    {
        Start();
        var redis = _connected.Task.IsCompletedSuccessfully ? _connected.Task.Result : _connected.Task.GetAwaiter().GetResult();
        Volatile.Write(ref _handedOver, true);
        return redis;
    }

    /// <summary>A connect that was still running when the host stopped: close what it made once it is done.</summary>
    private async Task DisposeLateAsync(Task<IConnectionMultiplexer> connecting)
    {
        try
        {
            var late = await connecting.ConfigureAwait(false);
            await late.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            HostingLog.ConnectFailed(_logger, e, _options.Value.InstanceId ?? "", Failures + 1, TimeSpan.Zero);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Registered both as itself and as a hosted service, so the container disposes it twice.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        Task? loop;
        lock (_lock)
        {
            loop = _loop;
        }
        if (loop is null)
        {
            // Never started (the host failed before, e.g. on invalid options): nothing to wait for or close.
            _stopping.Dispose();
            return;
        }
        // The loop ends at once when cancelled, or once a connect in flight has finished and its multiplexer is closed;
        // a hook that never returns is given up on after the stop budget.
        await StopStep.ObserveAsync(loop, _budget.Length, "connect", _logger, _options.Value.InstanceId ?? "").ConfigureAwait(false);
        if (_connected.Task.IsCompletedSuccessfully && !Volatile.Read(ref _handedOver))
        {
            await _connected.Task.Result.DisposeAsync().ConfigureAwait(false);
        }
        _stopping.Dispose();
    }
}
