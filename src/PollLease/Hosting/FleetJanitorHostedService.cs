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
internal sealed class FleetJanitorHostedService : BackgroundService, IAsyncDisposable
{
    private readonly bool _enabled;
    private readonly string _instanceId;
    private readonly IServiceProvider _services;
    private readonly PollLeaseConnection _connection;
    private readonly PollLeaseHostedService _instance;
    private readonly ShutdownBudget _budget;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _stop;
    private FleetJanitor? _janitor;
    private int _stopped;
    private int _disposed;

    public FleetJanitorHostedService(
        IOptions<JanitorOptions> janitor,
        IOptions<PollLeaseOptions> lease,
        IServiceProvider services,
        PollLeaseConnection connection,
        PollLeaseHostedService instance,
        ShutdownBudget budget,
        ILoggerFactory loggerFactory)
    {
        _enabled = janitor.Value.Enabled;
        _instanceId = lease.Value.InstanceId ?? "";
        _services = services;
        _connection = connection;
        _instance = instance;
        _budget = budget;
        _logger = loggerFactory.CreateLogger("PollLease.Hosting");
        if (!_enabled)
        {
            _started.TrySetResult();
        }
    }

    /// <summary>The janitor, or null when disabled or not started yet (see <see cref="WhenStartedAsync"/>).</summary>
    public FleetJanitor? Janitor => Volatile.Read(ref _janitor);

    /// <summary>Completes once the janitor exists and joined the election (at once when disabled).</summary>
    /// <param name="cancellationToken">Abandons the wait.</param>
    public Task WhenStartedAsync(CancellationToken cancellationToken) => _started.Task.WaitAsync(cancellationToken);

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_enabled || ExecuteTask is not null)
        {
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
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _budget.Begin());
        try
        {
            await base.StopAsync(stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Told below, from the run's state.
        }
        if (!ExecuteTask.IsCompleted)
        {
            HostingLog.StopBudgetSpent(_logger, _instanceId, "janitor start", _budget.Length, 0);
        }
        if (Janitor is { } janitor)
        {
            // Leaves the election and deletes the role key so another instance takes over at once; when the budget is
            // spent first, the role key expires by its TTL.
            _stop = janitor.StopAsync(stop.Token);
            await StopStep.RunAsync(_stop, "janitor", _budget.Length, _logger, _instanceId, () => 0, stop.Token).ConfigureAwait(false);
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
            HostingLog.JanitorFailed(_logger, e, _instanceId);
            _started.TrySetException(e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Registered both as itself and as a hosted service, so the container disposes it twice.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        // A host disposed without being stopped: the container has already disposed the janitor (which leaves the
        // election) before the connection; only a start still waiting for the connection is left to end here.
        Dispose();
        await StopStep.ObserveAsync(ExecuteTask, _budget.Length, "janitor start", _logger, _instanceId).ConfigureAwait(false);
        await StopStep.ObserveAsync(_stop, _budget.Length, "janitor", _logger, _instanceId).ConfigureAwait(false);
    }
}
