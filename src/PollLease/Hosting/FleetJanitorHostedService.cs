using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Election;
using PollLease.Fleet;
using PollLease.Telemetry;

namespace PollLease.Hosting;

/// <summary>
/// Runs the janitor election in every instance when <see cref="JanitorOptions.Enabled"/>; the elected one does the
/// fleet-wide duties. Like the instance itself it starts in the background once the Redis connection exists, and
/// stops within what is left of the instance's <see cref="ShutdownBudget"/> (it is registered before
/// <see cref="PollLeaseHostedService"/>, so the host stops it after the leases were released). Its run only joins
/// the election; the janitor's own loop does the work.
/// </summary>
internal sealed class FleetJanitorHostedService : BudgetedBackgroundService
{
    private readonly IOptions<JanitorOptions> _janitorOptions;
    private readonly IOptions<PollLeaseOptions> _lease;
    private readonly IServiceProvider _services;
    private readonly PollLeaseConnection _connection;
    private readonly PollLeaseHostedService _instance;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _stop;
    private FleetJanitor? _janitor;
    private int _stopped;

    public FleetJanitorHostedService(
        IOptions<JanitorOptions> janitor,
        IOptions<PollLeaseOptions> lease,
        IServiceProvider services,
        PollLeaseConnection connection,
        PollLeaseHostedService instance,
        ShutdownBudget budget,
        ILoggerFactory loggerFactory)
        : base(budget, loggerFactory.CreateLogger("PollLease.Hosting"))
    {
        // Read when first needed, not when built: the host builds its hosted services before its start-up validation,
        // which then reports every invalid section at once instead of only the first one read.
        _janitorOptions = janitor;
        _lease = lease;
        _services = services;
        _connection = connection;
        _instance = instance;
    }

    /// <summary>The janitor, or null when disabled or not started yet (see <see cref="WhenStartedAsync"/>).</summary>
    public FleetJanitor? Janitor => Volatile.Read(ref _janitor);

    /// <summary>Completes once the janitor exists and joined the election (at once when disabled, once started).</summary>
    /// <param name="cancellationToken">Abandons the wait.</param>
    public Task WhenStartedAsync(CancellationToken cancellationToken) => _started.Task.WaitAsync(cancellationToken);

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (ExecuteTask is not null)
        {
            return Task.CompletedTask;
        }
        InstanceId = _lease.Value.InstanceId ?? "";
        if (!_janitorOptions.Value.Enabled)
        {
            _started.TrySetResult();
            return Task.CompletedTask;
        }
        _connection.Start();
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        if (ExecuteTask is null || Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, Budget.Begin());
        await StopRunAsync("janitor start", Budget.Length, () => 0, stop.Token).ConfigureAwait(false);
        if (Janitor is { } janitor)
        {
            // Leaves the election and deletes the role key so another instance takes over at once; when the budget is
            // spent first, the role key expires by its TTL.
            _stop = janitor.StopAsync(stop.Token);
            await StopStep.RunAsync(_stop, "janitor", Budget.Length, Logger, InstanceId, () => 0, stop.Token).ConfigureAwait(false);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            // The janitor joins once its own instance is in the fleet: a sweep before that would see no live instance
            // and publish no assignment until its next interval.
            if (await _instance.Running.WaitAsync(stoppingToken).ConfigureAwait(false) is null)
            {
                _started.TrySetCanceled(CancellationToken.None);
                return;
            }
            // From the container, created after the connection: the container then disposes it before the connection.
            var janitor = _services.GetRequiredService<FleetJanitor>();
            // Published before it starts, so a stop during the start still leaves the election.
            Volatile.Write(ref _janitor, janitor);
            await janitor.StartAsync(stoppingToken).ConfigureAwait(false);
            _started.TrySetResult();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            _started.TrySetCanceled(stoppingToken);
        }
        catch (Exception e)
        {
            // The instance polls on without fleet-wide duties; another instance's janitor does them.
            HostingLog.JanitorFailed(Logger, e, InstanceId);
            _started.TrySetException(e);
        }
    }

    protected override async ValueTask DisposeStartedAsync()
    {
        // The container has already disposed the janitor (which leaves the election) before the connection; only a
        // start still waiting for the connection is left to end here.
        await StopStep.ObserveAsync(ExecuteTask, Budget.Length, "janitor start", Logger, InstanceId).ConfigureAwait(false);
        await StopStep.ObserveAsync(_stop, Budget.Length, "janitor", Logger, InstanceId).ConfigureAwait(false);
    }
}
