using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Election;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Telemetry;

namespace PollLease.Hosting;

/// <summary>
/// Runs one instance in its host. Start returns at once: connecting to Redis, registering and the first cycle run in
/// the background (retried with backoff and logged while Redis or a token is unavailable), then the poll loop. Stop
/// ends the polls, then releases every lease and deregisters in one round trip, all within
/// <see cref="PollLeaseOptions.ShutdownTimeout"/> (<see cref="ShutdownBudget"/>); what cannot be released in time is
/// counted and left to expire by its TTL. It runs in every instance of a scaled-out app (unlike timer functions,
/// which Azure runs on one instance at a time).
/// </summary>
/// <remarks>
/// A <see cref="BackgroundService"/>: the start, the run and a failure that ends it follow the host's own rules (a run
/// that throws is logged and stops the host, per the host's <c>BackgroundServiceExceptionBehavior</c>). Only the stop
/// is its own, because it must share one budget between the poll drain and the release.
/// </remarks>
internal sealed class PollLeaseHostedService : BudgetedBackgroundService
{
    private readonly IServiceProvider _services;
    private readonly PollLeaseConnection _connection;
    private readonly IOptions<PollLeaseOptions> _options;
    private readonly IOptions<PollingOptions> _polling;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggerFactory;
    private readonly IMeterFactory? _meterFactory;
    private readonly TaskCompletionSource<LeaseManager?> _running = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _leaseStop;
    private PollScheduler? _scheduler;
    private LeaseManager? _leases;
    private int _state;

    public PollLeaseHostedService(
        IServiceProvider services,
        PollLeaseConnection connection,
        ShutdownBudget budget,
        IOptions<PollLeaseOptions> options,
        IOptions<PollingOptions> polling,
        TimeProvider time,
        ILoggerFactory loggerFactory,
        IMeterFactory? meterFactory = null)
        : base(budget, loggerFactory.CreateLogger("PollLease.Hosting"))
    {
        // Checked without constructing the handler: a handler may need Redis (the record handler does), and nothing
        // Redis-backed is built before the connection exists.
        if (services.GetService<IServiceProviderIsService>() is { } isService && !isService.IsService(typeof(IPollHandler)))
        {
            throw new InvalidOperationException(
                "No IPollHandler is registered: call services.AddPollHandler<YourHandler>() (built in: HttpPollHandler, RecordPollHandler).");
        }
        _services = services;
        _connection = connection;
        // Read when first needed, not when built: the host builds its hosted services before its start-up validation,
        // which then reports every invalid section at once instead of only the first one read.
        _options = options;
        _polling = polling;
        _time = time;
        _loggerFactory = loggerFactory;
        _meterFactory = meterFactory;
    }

    /// <summary>Leases the last stop could not release (they expire by their TTL); 0 before a stop.</summary>
    public int LeftToExpire { get; private set; }

    /// <summary>The lease manager once the instance runs; null before that and after it stopped.</summary>
    internal LeaseManager? Leases => _state == States.Started && _running.Task.IsCompletedSuccessfully ? _running.Task.Result : null;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _state, States.Started, States.New) != States.New)
        {
            throw new InvalidOperationException($"Instance {InstanceId} was already started.");
        }
        InstanceId = _options.Value.InstanceId ?? "";
        // A missing or unparsable connection string fails the start here; an unreachable Redis never does.
        _connection.Start();
        return base.StartAsync(cancellationToken);
    }

    /// <summary>
    /// Waits until the instance runs (connected, registered, cycle loop started) and returns its lease manager; returns
    /// null at once when the host has not started or is stopping, and null when it stops before running.
    /// </summary>
    /// <param name="cancellationToken">Abandons the wait.</param>
    internal async Task<LeaseManager?> WhenRunningAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _state) != States.Started)
        {
            return null;
        }
        var leases = await _running.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return Volatile.Read(ref _state) == States.Started ? leases : null;
    }

    /// <summary>Completes with the lease manager once the instance runs, or with null when it stopped before that.</summary>
    internal Task<LeaseManager?> Running => _running.Task;

    /// <summary>Asks the poll loop for a scheduling pass now (due polls of owned sessions start at once).</summary>
    /// <returns>False when the poll loop is not running yet (or any more).</returns>
    internal bool WakePolling()
    {
        var scheduler = Leases is null ? null : _scheduler;
        scheduler?.Wake();
        return scheduler is not null;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _state, States.Stopped) != States.Started)
        {
            return;
        }
        var started = _time.GetTimestamp();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, Budget.Begin());

        // 1. The polls in flight see the cancelled stopping token; wait for them at most half the budget, so the release
        //    has time.
        using (var half = new CancellationTokenSource(Budget.Length / 2, _time))
        using (var drain = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, half.Token))
        {
            await StopRunAsync("poll drain", Budget.Length / 2, () => _leases?.OwnedSessions().Count ?? 0, drain.Token).ConfigureAwait(false);
        }

        // 2. Cycle gate, unsubscribe, release and deregister: the lease manager's own stop, bounded by what is left. While
        //    a poll is still running (its handler ignores cancellation), releasing would let another instance poll that
        //    session alongside it: then nothing is released, the leases expire by their TTL. The stop then runs with a
        //    token cancelled from the start, which ends the cycle loop without a round trip (no renewal after this point,
        //    and the poll loop has stopped, so nothing new starts under those leases).
        var leases = Volatile.Read(ref _leases);
        if (leases is not null)
        {
            Task<LeaseStopResult> leaseStop;
            // Counted before the stop: once it starts it drops every lease locally, so a count taken after a stop that
            // outran the budget would read 0 while those leases are still in Redis.
            var held = leases.OwnedSessions().Count;
            if (ExecuteTask is { IsCompleted: false })
            {
                HostingLog.LeasesKept(Logger, InstanceId, held);
                using var noRelease = new CancellationTokenSource();
                await noRelease.CancelAsync().ConfigureAwait(false);
                leaseStop = leases.StopWithoutReleaseAsync(noRelease.Token);
                _leaseStop = leaseStop;
                await StopStep.ObserveAsync(leaseStop, Budget.Length, "release", Logger, InstanceId).ConfigureAwait(false);
            }
            else
            {
                leaseStop = leases.StopAsync(stop.Token);
                _leaseStop = leaseStop;
                await StopStep.RunAsync(leaseStop, "release", Budget.Length, Logger, InstanceId, () => held, stop.Token).ConfigureAwait(false);
            }
            // The lease manager's stop reports what it left; a stop still running past the budget leaves everything.
            LeftToExpire = leaseStop.IsCompletedSuccessfully ? leaseStop.Result.LeftToExpire : held;
        }
        var elapsed = _time.GetElapsedTime(started);
        HostingLog.StopFinished(Logger, InstanceId, elapsed, LeftToExpire);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await _connection.GetAsync(stoppingToken).ConfigureAwait(false);
            // Resolved only now: each of these needs the connection.
            var leases = _services.GetRequiredService<LeaseManager>();
            var handler = _services.GetServices<IPollHandler>().Last();
            var scheduler = new PollScheduler(leases, handler, _polling.Value, _time,
                _loggerFactory.CreateLogger("PollLease.Polling"), new PollMetrics(_meterFactory, leases.InstanceId));
            _scheduler = scheduler;
            // Published before it starts, so a stop during the start still deregisters what the start registered.
            Volatile.Write(ref _leases, leases);
            // The lease manager's start fails only on what it cannot shrug off itself (a token that cannot be had).
            await StartRetry.UntilDoneAsync(async ct =>
            {
                await leases.StartAsync(ct).ConfigureAwait(false);
                return leases;
            }, (e, _, delay) => HostingLog.StartFailed(Logger, e, InstanceId, delay), _time, stoppingToken).ConfigureAwait(false);
            _running.TrySetResult(leases);
            await scheduler.RunAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopped before or while starting.
        }
        catch (Exception e)
        {
            // Not an outage (those are retried): a service that cannot be built, a loop that broke. An instance that
            // cannot poll must not keep the worker looking healthy: rethrown, the host stops (its default for a failed
            // background service).
            HostingLog.InstanceFailed(Logger, e, InstanceId);
            throw;
        }
        finally
        {
            _running.TrySetResult(null);
        }
    }

    protected override async ValueTask DisposeStartedAsync()
    {
        // A host disposed without being stopped: the container has already disposed the lease manager (which releases
        // its leases) before the connection. Steps a stop gave up on may still be running: let them end (each is
        // bounded) and report how they ended.
        var idle = await StopStep.ObserveAsync(ExecuteTask, Budget.Length, "poll loop", Logger, InstanceId).ConfigureAwait(false);
        await StopStep.ObserveAsync(_leaseStop, Budget.Length, "release", Logger, InstanceId).ConfigureAwait(false);
        if (idle)
        {
            // Polls still running hold the scheduler's slots: it is disposed only once they are done.
            _scheduler?.Dispose();
        }
    }

    private static class States
    {
        public const int New = 0;
        public const int Started = 1;
        public const int Stopped = 2;
    }
}
