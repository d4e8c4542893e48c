using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Telemetry;
using PollLease.Tests.Infrastructure;

namespace PollLease.Tests.Hosting;

/// <summary>
/// The instruments docs/azure.md names for Application Insights (owned leases, acquisitions, losses, failovers, poll
/// duration) emit from a hosted instance, and the forwarder the Functions app uses hands them on with their tags.
/// </summary>
public abstract class HostTelemetryTests(RedisFixture fixture)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_failover_under_a_host_emits_the_readme_instruments_and_the_forwarder_passes_them_on()
    {
        var prefix = RedisFixture.NewPrefix();
        await Coordination.LeaseTestHost.NewFleetAsync(fixture.Redis, prefix);
        var catalog = new SessionCatalog(fixture.Redis, prefix);
        for (var i = 0; i < 3; i++)
        {
            await catalog.AddAsync($"s{i}", "record", TimeSpan.FromSeconds(4));
        }
        var forwarded = new ConcurrentQueue<PollLeaseMeasurement>();
        using var forwarder = new PollLeaseMetricForwarder(m =>
        {
            if (m.Tags.TryGetValue("instance", out var instance) && instance == "host-b")
            {
                forwarded.Enqueue(m);
            }
        });

        // "crashed" takes every session in one cycle and then never runs again: no heartbeat, no renew, no release.
        await using var crashedConnection = await fixture.ConnectAsync();
        await using (var crashed = new LeaseManager(crashedConnection, Coordination.LeaseTestHost.FastOptions(prefix, "crashed"), catalog))
        {
            await crashed.RunCycleAsync();
            Assert.Equal(3, crashed.OwnedSessions().Count);
        }

        using var host = GenericTestHost.Build(GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-b"));
        var meters = host.Services.GetRequiredService<IMeterFactory>();
        using var owned = new MetricCollector<int>(meters, PollLeaseTelemetry.MeterName, "polllease.leases.owned");
        using var acquisitions = new MetricCollector<long>(meters, PollLeaseTelemetry.MeterName, "polllease.lease.acquisitions");
        using var failovers = new MetricCollector<long>(meters, PollLeaseTelemetry.MeterName, "polllease.lease.failovers");
        using var losses = new MetricCollector<long>(meters, PollLeaseTelemetry.MeterName, "polllease.lease.losses");
        using var pollDuration = new MetricCollector<double>(meters, PollLeaseTelemetry.MeterName, "polllease.poll.duration");
        await host.StartAsync();

        await Eventually.TrueAsync(() => failovers.GetMeasurementSnapshot().EvaluateAsCounter() == 3, Wait, "host-b takes the 3 sessions over from the crashed instance");
        Assert.All(failovers.GetMeasurementSnapshot(), m => Assert.Equal("crashed", m.Tags["from"]));
        Assert.Equal(3, acquisitions.GetMeasurementSnapshot().EvaluateAsCounter());
        await Eventually.TrueAsync(() => pollDuration.GetMeasurementSnapshot().Count >= 3, Wait, "host-b polls the 3 sessions");
        owned.RecordObservableInstruments();
        Assert.Equal(3, owned.LastMeasurement!.Value);

        // A lease lost under the host: its key deleted behind its back is reported at the next renew.
        await fixture.Redis.GetDatabase().KeyDeleteAsync($"{{{prefix}}}:lease:s0");
        await Eventually.TrueAsync(() => losses.GetMeasurementSnapshot().Count >= 1, Wait, "the lost lease is counted");
        Assert.Equal(LeaseReasons.Expired, losses.GetMeasurementSnapshot()[0].Tags["reason"]);

        forwarder.RecordObservableInstruments();
        var names = forwarded.Select(m => m.Name).ToHashSet();
        Assert.Superset(new HashSet<string>
        {
            "polllease.leases.owned", "polllease.lease.acquisitions", "polllease.lease.failovers",
            "polllease.lease.losses", "polllease.poll.duration", "polllease.cycle.duration",
        }, names);
        var failover = forwarded.First(m => m.Name == "polllease.lease.failovers");
        Assert.True(failover.IsCounter);
        Assert.Equal(1, failover.Value);
        Assert.Equal("crashed", failover.Tags["from"]);
        Assert.False(forwarded.First(m => m.Name == "polllease.leases.owned").IsCounter);
        await host.StopAsync();
    }

    [Fact]
    public async Task The_lease_cycle_activity_reaches_the_activity_forwarder_with_its_instance_and_outcome()
    {
        var prefix = RedisFixture.NewPrefix();
        await new SessionCatalog(fixture.Redis, prefix).AddAsync("s0", "record", TimeSpan.FromSeconds(4));
        var cycles = new ConcurrentQueue<System.Diagnostics.Activity>();
        using var forwarder = new PollLeaseActivityForwarder(a =>
        {
            if (a.GetTagItem("polllease.instance") as string == "host-act")
            {
                cycles.Enqueue(a);
            }
        });

        using var host = await GenericTestHost.StartAsync(GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-act"));
        await Eventually.TrueAsync(() => cycles.Any(a => a.GetTagItem("polllease.acquired") is 1), Wait, "the cycle that acquires s0 is forwarded");
        await host.StopAsync();

        Assert.All(cycles, a => Assert.Equal("polllease.cycle", a.OperationName));
        Assert.Contains(cycles, a => a.Status != System.Diagnostics.ActivityStatusCode.Error && a.Duration > TimeSpan.Zero);
    }

    [Fact]
    public async Task A_graceful_handoff_is_not_counted_as_a_failover()
    {
        var prefix = RedisFixture.NewPrefix();
        await Coordination.LeaseTestHost.NewFleetAsync(fixture.Redis, prefix);
        var catalog = new SessionCatalog(fixture.Redis, prefix);
        for (var i = 0; i < 4; i++)
        {
            await catalog.AddAsync($"s{i}", "record", TimeSpan.FromSeconds(4));
        }
        using var a = await GenericTestHost.StartAsync(GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-a"));
        // host-a's janitor has published the assignment host-b will plan from (a later first publication would be one
        // more change of plan, and one more acquisition, while host-b joins).
        await Eventually.TrueAsync(async () => await fixture.Redis.GetDatabase().KeyExistsAsync($"{{{prefix}}}:assignment"), Wait, "host-a's janitor published");
        using var b = GenericTestHost.Build(GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-b"));
        using var failovers = new MetricCollector<long>(b.Services.GetRequiredService<IMeterFactory>(), PollLeaseTelemetry.MeterName, "polllease.lease.failovers");
        using var acquisitions = new MetricCollector<long>(b.Services.GetRequiredService<IMeterFactory>(), PollLeaseTelemetry.MeterName, "polllease.lease.acquisitions");
        await b.StartAsync();
        await Eventually.TrueAsync(() => b.Leases().OwnedSessions().Count == 2, Wait, "host-b gets its share by rebalancing");

        await a.StopAsync();
        await Eventually.TrueAsync(() => b.Leases().OwnedSessions().Count == 4, Wait, "host-b takes the rest after host-a's release");

        Assert.Equal(4, acquisitions.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(0, failovers.GetMeasurementSnapshot().EvaluateAsCounter());
        await b.StopAsync();
    }
}

public sealed class HostTelemetryTests_RedisServer(RedisServerFixture f) : HostTelemetryTests(f), IClassFixture<RedisServerFixture>;

public sealed class HostTelemetryTests_Garnet(GarnetFixture f) : HostTelemetryTests(f), IClassFixture<GarnetFixture>;
