using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace PollLease.Telemetry;

/// <summary>
/// Names of the <see cref="Meter"/> and <see cref="ActivitySource"/> PollLease reports through. Add them to
/// OpenTelemetry (<c>AddMeter(PollLeaseTelemetry.MeterName)</c>, <c>AddSource(PollLeaseTelemetry.ActivitySourceName)</c>);
/// Application Insights collects them through its OpenTelemetry pipeline.
/// </summary>
public static class PollLeaseTelemetry
{
    /// <summary>The meter name: <c>PollLease</c>.</summary>
    public const string MeterName = "PollLease";

    /// <summary>The activity source name: <c>PollLease</c>.</summary>
    public const string ActivitySourceName = "PollLease";

    internal static readonly ActivitySource ActivitySource = new(ActivitySourceName);
}

/// <summary>
/// The lease instruments. One instance per <see cref="IMeterFactory"/> (or a private meter when none is
/// given); every measurement carries the <c>instance</c> tag so several instances in one process stay apart.
/// </summary>
internal sealed class LeaseMetrics
{
    private readonly Counter<long> _acquired;
    private readonly Counter<long> _lost;
    private readonly Counter<long> _released;
    private readonly Counter<long> _failovers;
    private readonly Counter<long> _cycleFailures;
    private readonly Histogram<double> _cycleDuration;
    private readonly KeyValuePair<string, object?> _instance;

    public LeaseMetrics(IMeterFactory? meterFactory, string instanceId, Func<int> ownedCount)
    {
        var meter = meterFactory?.Create(PollLeaseTelemetry.MeterName) ?? new Meter(PollLeaseTelemetry.MeterName);
        _instance = new KeyValuePair<string, object?>("instance", instanceId);
        var instanceTag = _instance;
        meter.CreateObservableGauge("polllease.leases.owned", () => new Measurement<int>(ownedCount(), instanceTag),
            unit: "{lease}", description: "Leases this instance holds (Owned or Uncertain).");
        _acquired = meter.CreateCounter<long>("polllease.lease.acquisitions", "{lease}", "Leases acquired.");
        _lost = meter.CreateCounter<long>("polllease.lease.losses", "{lease}", "Leases lost, by reason (deadline, expired, taken).");
        _released = meter.CreateCounter<long>("polllease.lease.releases", "{lease}", "Leases released on purpose, by reason.");
        _failovers = meter.CreateCounter<long>("polllease.lease.failovers", "{lease}", "Leases taken over after another instance's lease expired without a release (that instance crashed or lost Redis).");
        _cycleFailures = meter.CreateCounter<long>("polllease.cycle.failures", "{cycle}", "Lease cycles that failed (Redis unreachable, timeout, error).");
        _cycleDuration = meter.CreateHistogram<double>("polllease.cycle.duration", "s", "Round-trip time of the lease cycle (heartbeat, renew, acquire, release in one script call).");
    }

    public void Acquired(int count)
    {
        if (count > 0)
        {
            _acquired.Add(count, _instance);
        }
    }

    public void Lost(string reason) => _lost.Add(1, _instance, new KeyValuePair<string, object?>("reason", reason));

    public void Released(string reason, int count)
    {
        if (count > 0)
        {
            _released.Add(count, _instance, new KeyValuePair<string, object?>("reason", reason));
        }
    }

    public void Failover(string from) => _failovers.Add(1, _instance, new KeyValuePair<string, object?>("from", from));

    public void CycleFailed() => _cycleFailures.Add(1, _instance);

    public void CycleDuration(TimeSpan elapsed) => _cycleDuration.Record(elapsed.TotalSeconds, _instance);
}
