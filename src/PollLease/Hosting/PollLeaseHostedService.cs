using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Telemetry;

namespace PollLease.Hosting;

/// <summary>
/// Runs one instance in its host: registers it and starts the lease loop on start, polls owned sessions, and on
/// stop ends the polls, then releases every lease and deregisters in one round trip. It runs in every instance
/// of a scaled-out app (unlike timer functions, which Azure runs on one instance at a time).
/// </summary>
internal sealed class PollLeaseHostedService : IHostedService, IDisposable
{
    private readonly LeaseManager _leases;
    private readonly PollScheduler _scheduler;
    private CancellationTokenSource? _stopping;
    private Task? _polling;

    public PollLeaseHostedService(
        LeaseManager leases,
        IEnumerable<IPollHandler> handlers,
        IPollSessionSource sessions,
        IOptions<PollingOptions> polling,
        TimeProvider time,
        ILoggerFactory loggerFactory,
        IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(sessions);
        _leases = leases;
        var handler = handlers.LastOrDefault() ?? throw new InvalidOperationException(
            "No IPollHandler is registered: call services.AddPollHandler<YourHandler>() (built in: HttpPollHandler, RecordPollHandler).");
        _scheduler = new PollScheduler(leases, sessions.GetSessionsAsync, handler, polling.Value, time,
            loggerFactory.CreateLogger("PollLease.Polling"), new PollMetrics(meterFactory, leases.InstanceId));
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _leases.StartAsync(cancellationToken).ConfigureAwait(false);
        var stopping = new CancellationTokenSource();
        _stopping = stopping;
        _polling = Task.Run(() => _scheduler.RunAsync(stopping.Token), CancellationToken.None);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopping is not null)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }
        try
        {
            if (_polling is not null)
            {
                await _polling.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            // Even when the host's patience ran out waiting for a handler that ignores cancellation, give the
            // leases back (bounded by ShutdownTimeout); a late write of that handler is rejected by its token.
            await _leases.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Asks the poll loop for a scheduling pass now (due polls of owned sessions start at once).</summary>
    internal void WakePolling() => _scheduler.Wake();

    public void Dispose()
    {
        _stopping?.Dispose();
        _scheduler.Dispose();
    }
}
