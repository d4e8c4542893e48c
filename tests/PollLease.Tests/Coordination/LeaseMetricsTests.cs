using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Telemetry;
using PollLease.Tests.Infrastructure;

namespace PollLease.Tests.Coordination;

public abstract class LeaseMetricsTests(RedisFixture fixture)
{
    [Fact]
    public async Task Lease_instruments_report_owned_acquired_released_lost_and_cycle_duration()
    {
        var prefix = RedisFixture.NewPrefix();
        using var meterFactory = new TestMeterFactory();
        await using var redis = await fixture.ConnectAsync();
        await LeaseTestHost.NewFleetAsync(redis, prefix);
        await using var a = new LeaseManager(redis, LeaseTestHost.FastOptions(prefix, "node-m"), StaticSessionSource.FromIds(["s1", "s2", "s3"]), meterFactory: meterFactory);
        var meter = meterFactory.Meters.Single();
        using var acquired = new MetricCollector<long>(meter, "polllease.lease.acquisitions");
        using var released = new MetricCollector<long>(meter, "polllease.lease.releases");
        using var lost = new MetricCollector<long>(meter, "polllease.lease.losses");
        using var duration = new MetricCollector<double>(meter, "polllease.cycle.duration");
        using var owned = new MetricCollector<int>(meter, "polllease.leases.owned");

        await a.RunCycleAsync();
        await a.ReleaseAsync("s1", LeaseReasons.Rebalance);
        // Its heartbeat vanishes from the registry: the next cycle finds it lapsed and gives up every lease it held.
        await fixture.Redis.GetDatabase().SortedSetRemoveAsync($"{{{prefix}}}:nodes", "node-m");
        await a.RunCycleAsync();
        owned.RecordObservableInstruments();

        Assert.Equal(3 + 1, acquired.GetMeasurementSnapshot().EvaluateAsCounter()); // s1 is re-acquired by first-come
        var r = Assert.Single(released.GetMeasurementSnapshot());
        Assert.Equal(LeaseReasons.Rebalance, r.Tags["reason"]);
        Assert.Equal("node-m", r.Tags["instance"]);
        Assert.Equal(2, lost.GetMeasurementSnapshot().Count);
        Assert.All(lost.GetMeasurementSnapshot(), l => Assert.Equal(LeaseReasons.HeartbeatLapsed, l.Tags["reason"]));
        Assert.Equal(2, duration.GetMeasurementSnapshot().Count);
        Assert.Equal(1, owned.LastMeasurement!.Value);
    }
}

public sealed class LeaseMetricsTests_RedisServer(RedisServerFixture f) : LeaseMetricsTests(f), IClassFixture<RedisServerFixture>;

public sealed class LeaseMetricsTests_Garnet(GarnetFixture f) : LeaseMetricsTests(f), IClassFixture<GarnetFixture>;
