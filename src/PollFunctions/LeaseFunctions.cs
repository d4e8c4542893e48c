using Microsoft.Azure.Functions.Worker;
using PollLease.Hosting;

namespace PollFunctions;

/// <summary>
/// The timer and warm-up functions. Azure runs a timer function on one instance at a time across a scaled-out app,
/// so these never carry an instance's heartbeat or renewals (the hosted service does, on every instance): they wake
/// the app on schedule and make the instance they land on act now. All behaviour is in <see cref="PollLeaseTriggers"/>.
/// </summary>
/// <remarks>
/// One timer function, not two: on Flex Consumption every non-HTTP function is a scale group of its own, running on
/// instances of its own, and each such instance runs the hosted service and joins the fleet. With a single timer the
/// fleet is exactly that function's instances (its always-ready count); the lease cycle and the poll pass run together.
/// </remarks>
/// <param name="triggers">PollLease's trigger entry points.</param>
public sealed class LeaseFunctions(PollLeaseTriggers triggers)
{
    /// <summary>
    /// Runs this instance's lease cycle now (never at the same time as its hosted cycle), the fleet-wide duties when it
    /// is the janitor, then a poll pass over the sessions it owns.
    /// Schedule: app setting <c>PollLeaseTimerSchedule</c> (six-field NCRONTAB, UTC; <c>*/10 * * * * *</c>).
    /// </summary>
    /// <param name="timer">The timer (a missed tick is not queued; the function never overlaps itself).</param>
    /// <param name="cancellationToken">Cancelled when the host shuts down.</param>
    [Function("lease")]
    public async Task LeaseAsync([TimerTrigger("%PollLeaseTimerSchedule%", UseMonitor = false)] TimerInfo timer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(timer);
        await triggers.RunScheduledAsync(timer.IsPastDue ? "timer-past-due" : "timer", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Premium and Dedicated plans call this on each new instance before it takes traffic: register it and take its
    /// share at once. Flex Consumption and Consumption never call it; there the hosted service registers the instance
    /// as soon as its host has started and Redis answers.
    /// </summary>
    /// <param name="warmupContext">Unused; the trigger has no payload.</param>
    /// <param name="cancellationToken">Cancelled when the host shuts down.</param>
    [Function("warmup")]
    public async Task WarmupAsync([WarmupTrigger] object warmupContext, CancellationToken cancellationToken) =>
        await triggers.RunLeaseCycleAsync("warmup", cancellationToken).ConfigureAwait(false);
}
