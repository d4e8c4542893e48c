using System.Diagnostics.Metrics;

namespace PollLease.Telemetry;

/// <summary>The poll instruments: started, succeeded, failed, skipped (by reason), duration and lag behind schedule.</summary>
internal sealed class PollMetrics
{
    private readonly Counter<long> _started;
    private readonly Counter<long> _succeeded;
    private readonly Counter<long> _failed;
    private readonly Counter<long> _skipped;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _lag;
    private readonly KeyValuePair<string, object?> _instance;

    public PollMetrics(IMeterFactory? meterFactory, string instanceId)
    {
        var meter = meterFactory?.Create(PollLeaseTelemetry.MeterName) ?? new Meter(PollLeaseTelemetry.MeterName);
        _instance = new("instance", instanceId);
        _started = meter.CreateCounter<long>("polllease.polls.started", "{poll}", "Polls started.");
        _succeeded = meter.CreateCounter<long>("polllease.polls.succeeded", "{poll}", "Polls that ended Changed or Unchanged.");
        _failed = meter.CreateCounter<long>("polllease.polls.failed", "{poll}", "Polls that failed, threw or timed out.");
        _skipped = meter.CreateCounter<long>("polllease.polls.skipped", "{poll}", "Due polls not started, by reason (uncertain, not-owned, paused, busy).");
        _duration = meter.CreateHistogram<double>("polllease.poll.duration", "s", "Duration of one poll.");
        _lag = meter.CreateHistogram<double>("polllease.poll.lag", "s", "How late a poll started after it was due.");
    }

    public void Started(TimeSpan lag)
    {
        _started.Add(1, _instance);
        _lag.Record(lag.TotalSeconds, _instance);
    }

    public void Finished(bool ok, TimeSpan duration)
    {
        (ok ? _succeeded : _failed).Add(1, _instance);
        _duration.Record(duration.TotalSeconds, _instance);
    }

    public void Skipped(string reason) => _skipped.Add(1, _instance, new KeyValuePair<string, object?>("reason", reason));
}
