using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PollLease.Telemetry;

namespace PollLease.Hosting;

/// <summary>
/// A <see cref="BackgroundService"/> whose stop shares the instance's <see cref="ShutdownBudget"/>: its run is
/// cancelled and waited for within a bound the subclass picks, what outlives the bound is logged and left to end
/// against its cancelled token, and a dispose (also of a host that never stopped it) ends the run and observes how
/// whatever the stop gave up on ended. Abstract because the instance and the janitor spend the budget differently.
/// </summary>
internal abstract class BudgetedBackgroundService(ShutdownBudget budget, ILogger logger) : BackgroundService, IAsyncDisposable
{
    private int _disposed;

    /// <summary>The instance's stop budget.</summary>
    protected ShutdownBudget Budget => budget;

    /// <summary>The hosting log.</summary>
    protected ILogger Logger => logger;

    /// <summary>The instance id the logs name ("" before the start read it).</summary>
    protected string InstanceId { get; set; } = "";

    /// <summary>
    /// Cancels the run and waits for it until <paramref name="bound"/> is cancelled. Returns false, logged as the
    /// budget spent on <paramref name="step"/>, when the run is still going (it ends alone, against its cancelled token).
    /// </summary>
    /// <param name="step">The step's name in the log.</param>
    /// <param name="length">The bound's length, for the log.</param>
    /// <param name="leftToExpire">What the run still holds, for the log.</param>
    /// <param name="bound">Ends the wait.</param>
    protected async Task<bool> StopRunAsync(string step, TimeSpan length, Func<int> leftToExpire, CancellationToken bound)
    {
        try
        {
            await base.StopAsync(bound).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (bound.IsCancellationRequested)
        {
            // Told below, from the run's state.
        }
        if (ExecuteTask is { IsCompleted: false })
        {
            HostingLog.StopBudgetSpent(logger, InstanceId, step, length, leftToExpire());
            return false;
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        // Registered both as itself and as a hosted service, so the container disposes it twice.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        // Cancels the run: a host disposed without being stopped leaves it running.
        Dispose();
        if (ExecuteTask is null)
        {
            return; // never started (disabled, or the host failed first, e.g. on invalid options)
        }
        await DisposeStartedAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Waits (bounded) for the run and for any step a stop gave up on, and reports how they ended. Called once, and
    /// only when the service was started.
    /// </summary>
    protected abstract ValueTask DisposeStartedAsync();
}
