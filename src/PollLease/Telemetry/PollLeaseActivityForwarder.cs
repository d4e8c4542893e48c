using System.Diagnostics;

namespace PollLease.Telemetry;

/// <summary>
/// Hands every finished activity of the <c>PollLease</c> <see cref="ActivitySource"/> (the lease cycle,
/// <c>polllease.cycle</c>) to a callback, for telemetry pipelines that do not listen to activity sources themselves:
/// the Azure Functions app records them in Application Insights as dependencies. Listening makes the source create
/// its activities even when nothing else samples them.
/// </summary>
internal sealed class PollLeaseActivityForwarder : IDisposable
{
    private readonly ActivityListener _listener;

    /// <summary>Starts listening.</summary>
    /// <param name="onStopped">Called with each stopped activity, on the thread that stopped it; keep it cheap.</param>
    public PollLeaseActivityForwarder(Action<Activity> onStopped)
    {
        ArgumentNullException.ThrowIfNull(onStopped);
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == PollLeaseTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = onStopped,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();
}
