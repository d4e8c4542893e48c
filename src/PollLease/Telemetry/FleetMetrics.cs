using System.Diagnostics.Metrics;
using PollLease.Election;
using PollLease.Fleet;

namespace PollLease.Telemetry;

/// <summary>
/// The fleet gauges the elected janitor publishes (from its last sweep) and its removal counter. Only the janitor
/// reports the gauges, so a dashboard summing over instances still sees the fleet once.
/// </summary>
internal sealed class FleetMetrics
{
    private readonly Counter<long> _removed;
    private readonly KeyValuePair<string, object?> _instance;

    public FleetMetrics(IMeterFactory? meterFactory, string instanceId, Func<JanitorSweep?> current)
    {
        var meter = meterFactory?.Create(PollLeaseTelemetry.MeterName) ?? new Meter(PollLeaseTelemetry.MeterName);
        _instance = new KeyValuePair<string, object?>("instance", instanceId);
        var tag = _instance;
        IEnumerable<Measurement<int>> Gauge(Func<JanitorSweep, int> pick) =>
            current() is { } s ? [new Measurement<int>(pick(s), tag)] : [];
        meter.CreateObservableGauge("polllease.fleet.instances", () => Gauge(s => s.LiveInstances), "{instance}", "Live instances (reported by the janitor).");
        meter.CreateObservableGauge("polllease.fleet.sessions", () => Gauge(s => s.Sessions), "{session}", "Active sessions in the catalog (reported by the janitor).");
        meter.CreateObservableGauge("polllease.fleet.sessions.unowned", () => Gauge(s => s.Unowned), "{session}", "Active sessions nobody holds (reported by the janitor).");
        meter.CreateObservableGauge("polllease.fleet.busiest", () => Gauge(s => s.Busiest), "{lease}", "Most leases held by one instance (reported by the janitor).");
        meter.CreateObservableGauge("polllease.fleet.ideal", () => Gauge(s => s.Ideal), "{lease}", "ceil(sessions / live instances), the most any instance should hold (reported by the janitor).");
        meter.CreateObservableGauge("polllease.fleet.balance", () => current() is { } s ? [new Measurement<double>(s.Balance, tag)] : Array.Empty<Measurement<double>>(),
            description: "Busiest instance / ceil(S/N): 1 is perfectly balanced (reported by the janitor).");
        _removed = meter.CreateCounter<long>("polllease.janitor.removed", "{key}", "Registry entries, leases and fences removed by the janitor, by kind (node, lease, fence).");
    }

    public void Removed(string kind, int count)
    {
        if (count > 0)
        {
            _removed.Add(count, _instance, new KeyValuePair<string, object?>("kind", kind));
        }
    }
}
