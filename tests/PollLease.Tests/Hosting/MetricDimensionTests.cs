using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using PollLease.Telemetry;

namespace PollLease.Tests.Hosting;

/// <summary>
/// Metric dimensions stay bounded on their way to a backend that caps them (Application Insights keeps 100 values per
/// dimension and then drops measurements silently): crowded tags are coarsened to "(other)", measurements never lost.
/// </summary>
public sealed class MetricDimensionTests
{
    [Fact]
    public void The_limiter_keeps_the_first_values_and_coarsens_the_rest_to_other()
    {
        var limiter = new TagValueLimiter(50);
        var reported = Enumerable.Range(0, 150).Select(i => limiter.Apply("polllease.lease.failovers", "from", $"node-{i}")).ToList();

        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"node-{i}"), reported.Take(50));
        Assert.All(reported.Skip(50), r => Assert.Equal(TagValueLimiter.Other, r));
        Assert.Equal(100, limiter.Coarsened);
        // A value already kept stays itself; the limit is per instrument and tag.
        Assert.Equal("node-7", limiter.Apply("polllease.lease.failovers", "from", "node-7"));
        Assert.Equal("node-149", limiter.Apply("polllease.lease.losses", "from", "node-149"));
    }

    [Fact]
    public void One_hundred_and_fifty_failovers_from_distinct_instances_all_reach_the_forwarder_under_at_most_51_values()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        var forwarded = new ConcurrentQueue<PollLeaseMeasurement>();
        using var forwarder = new PollLeaseMetricForwarder(forwarded.Enqueue, PollLeaseMetricForwarder.DefaultMaxValuesPerTag, meters);
        var metrics = new LeaseMetrics(meters, "survivor", () => 0);

        for (var i = 0; i < 150; i++)
        {
            metrics.Failover($"crashed-{i:D3}");
        }

        var failovers = forwarded.Where(m => m.Name == "polllease.lease.failovers").ToList();
        Assert.Equal(150, failovers.Count);
        Assert.Equal(150, failovers.Sum(m => m.Value));
        var byFrom = failovers.GroupBy(m => m.Tags["from"]).ToDictionary(g => g.Key, g => g.Sum(m => m.Value));
        Assert.Equal(PollLeaseMetricForwarder.DefaultMaxValuesPerTag + 1, byFrom.Count);
        Assert.Equal(100, byFrom[TagValueLimiter.Other]);
        Assert.Equal(100, forwarder.CoarsenedTagValues);
        Assert.All(failovers, m => Assert.Equal("survivor", m.Tags["instance"]));
    }
}
