using Microsoft.Azure.Functions.Worker;
using PollLease.Hosting;

namespace PollFunctions;

/// <summary>
/// The timer and warm-up functions. Azure runs a timer function on one instance at a time across a scaled-out app,
/// so these never carry an instance's heartbeat or renewals (the hosted service does, on every instance): they wake
/// the app on schedule and make the instance they land on act now. All behaviour is in <see cref="PollLeaseTriggers"/>.
/// </summary>
/// <param name="triggers">PollLease's trigger entry points.</param>
public sealed class LeaseFunctions(PollLeaseTriggers triggers)
{
    /// <summary>
    /// Runs this instance's lease cycle now, never at the same time as its hosted cycle, then the fleet-wide duties.
    /// Schedule: app setting <c>PollLeaseTimerSchedule</c> (six-field NCRONTAB, UTC; <c>*/10 * * * * *</c>).
    /// </summary>
    /// <param name="timer">The timer (a missed tick is not queued; the function never overlaps itself).</param>
    /// <param name="cancellationToken">Cancelled when the host shuts down.</param>
    [Function("lease")]
    public async Task LeaseAsync([TimerTrigger("%PollLeaseTimerSchedule%", UseMonitor = false)] TimerInfo timer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(timer);
        await triggers.RunLeaseCycleAsync(timer.IsPastDue ? "timer-past-due" : "timer", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs this instance's poll scheduling pass now (due polls of the sessions it owns), once per cycle.</summary>
    /// <param name="timer">The timer.</param>
    [Function("poll")]
    public void Poll([TimerTrigger("%PollLeaseTimerSchedule%", UseMonitor = false)] TimerInfo timer)
    {
        ArgumentNullException.ThrowIfNull(timer);
        triggers.PollNow("timer");
    }

    /// <summary>
    /// Premium and Dedicated plans call this on each new instance before it takes traffic: register it and take its
    /// share at once. Flex Consumption never calls it; there the hosted service registers the instance at start-up.
    /// </summary>
    /// <param name="warmupContext">Unused; the trigger has no payload.</param>
    /// <param name="cancellationToken">Cancelled when the host shuts down.</param>
    [Function("warmup")]
    public async Task WarmupAsync([WarmupTrigger] object warmupContext, CancellationToken cancellationToken) =>
        await triggers.RunLeaseCycleAsync("warmup", cancellationToken).ConfigureAwait(false);
}
