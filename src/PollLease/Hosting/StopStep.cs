using Microsoft.Extensions.Logging;
using PollLease.Telemetry;

namespace PollLease.Hosting;

/// <summary>One bounded step of an instance's stop: waited for until its token is cancelled, then left to finish alone.</summary>
internal static class StopStep
{
    /// <summary>
    /// Waits for <paramref name="step"/> until <paramref name="budget"/> is cancelled. A step that runs out of budget or
    /// fails is logged, never thrown: the stop goes on with its next step, and a late failure is reported by
    /// <see cref="ObserveAsync"/> on dispose.
    /// </summary>
    public static async Task RunAsync(Task step, string name, TimeSpan length, ILogger logger, string instance, Func<int> leftToExpire, CancellationToken budget)
    {
        try
        {
            await step.WaitAsync(budget).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (budget.IsCancellationRequested)
        {
            HostingLog.StopBudgetSpent(logger, instance, name, length, leftToExpire());
        }
        catch (Exception e)
        {
            HostingLog.StopStepFailed(logger, e, instance, name);
        }
    }

    /// <summary>
    /// Awaits a step a stop may have abandoned, for at most <paramref name="patience"/>, logging how it failed
    /// (cancellation is how it should end). Returns false when it is still running (a handler ignoring cancellation).
    /// </summary>
    public static async Task<bool> ObserveAsync(Task? step, TimeSpan patience, string name, ILogger logger, string instance)
    {
        if (step is null)
        {
            return true;
        }
        try
        {
            await step.WaitAsync(patience).ConfigureAwait(false);
        }
        catch (TimeoutException e) when (!step.IsCompleted)
        {
            HostingLog.StopStepFailed(logger, e, instance, name);
            return false;
        }
        catch (OperationCanceledException)
        {
            // Cancelled by the stop, as intended.
        }
        catch (Exception e)
        {
            HostingLog.StopStepFailed(logger, e, instance, name);
        }
        return true;
    }
}
