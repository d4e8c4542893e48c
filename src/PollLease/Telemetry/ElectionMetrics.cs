using System.Diagnostics.Metrics;

namespace PollLease.Telemetry;

/// <summary>
/// The election instruments, under the names dashboards already query (<c>election_is_leader</c>, <c>election_transitions_total</c>,
/// <c>election_heartbeat_duration_seconds</c>, <c>election_failures_total</c>). Every measurement carries the
/// <c>role</c> and <c>instance</c> tags.
/// </summary>
internal sealed class ElectionMetrics
{
    private readonly Counter<long> _transitions;
    private readonly Counter<long> _failures;
    private readonly Histogram<double> _heartbeat;
    private readonly KeyValuePair<string, object?> _role;
    private readonly KeyValuePair<string, object?> _instance;

    public ElectionMetrics(IMeterFactory? meterFactory, string role, string instanceId, Func<bool> isLeader)
    {
        var meter = meterFactory?.Create(PollLeaseTelemetry.MeterName) ?? new Meter(PollLeaseTelemetry.MeterName);
        _role = new KeyValuePair<string, object?>("role", role);
        _instance = new KeyValuePair<string, object?>("instance", instanceId);
        var roleTag = _role;
        var instanceTag = _instance;
        meter.CreateObservableGauge("election_is_leader", () => new Measurement<int>(isLeader() ? 1 : 0, roleTag, instanceTag),
            description: "1 while this instance leads the role, else 0.");
        _transitions = meter.CreateCounter<long>("election_transitions_total", "{transition}", "Leadership changes of this instance, by direction (to=leader|follower) and reason.");
        _heartbeat = meter.CreateHistogram<double>("election_heartbeat_duration_seconds", "s", "Round-trip time of the leader's renew (compare-and-set) call.");
        _failures = meter.CreateCounter<long>("election_failures_total", "{failure}", "Failed election operations, by operation (acquire, renew, validate, release, health, callback).");
    }

    public void Promoted() => _transitions.Add(1, _role, _instance, new KeyValuePair<string, object?>("to", "leader"), new KeyValuePair<string, object?>("reason", "acquired"));

    public void Demoted(string reason) => _transitions.Add(1, _role, _instance, new KeyValuePair<string, object?>("to", "follower"), new KeyValuePair<string, object?>("reason", reason));

    public void Heartbeat(TimeSpan elapsed) => _heartbeat.Record(elapsed.TotalSeconds, _role, _instance);

    public void Failed(string operation) => _failures.Add(1, _role, _instance, new KeyValuePair<string, object?>("operation", operation));
}
