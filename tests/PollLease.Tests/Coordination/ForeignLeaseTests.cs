using System.Diagnostics;
using PollLease.Assignment;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;

namespace PollLease.Tests.Coordination;

/// <summary>
/// What an instance believes about leases another instance holds: it follows a live holder's heartbeat (no probe
/// each time the PTTL it once learnt runs out) and still takes the lease over at its expiry once the holder stops.
/// </summary>
public abstract class ForeignLeaseTests(RedisFixture fixture)
{
    private const string Session = "session-000001";
    private readonly string _prefix = RedisFixture.NewPrefix();

    /// <summary>Records what the real planner was asked and answered, cycle by cycle.</summary>
    private sealed class RecordingPlanner(ILeasePlanner inner) : ILeasePlanner
    {
        public List<(long At, LeasePlanInput Input, LeasePlan Plan)> Cycles { get; } = [];

        public LeasePlan Plan(LeasePlanInput input)
        {
            var plan = inner.Plan(input);
            Cycles.Add((Stopwatch.GetTimestamp(), input, plan));
            return plan;
        }
    }

    [Fact]
    public async Task A_live_holders_lease_is_not_probed_again_when_its_learnt_ttl_runs_out_and_is_taken_at_expiry_once_the_holder_stops()
    {
        var options = LeaseTestHost.FastOptions(_prefix, "node-b");
        await LeaseTestHost.NewFleetAsync(fixture.Redis, _prefix);
        var ghost = new LeaseStore(fixture.Redis, new RedisKeys(_prefix), "ghost", LeaseTestHost.FastOptions(_prefix, "ghost"));
        var taken = await ghost.RunAsync(new CycleRequest(HeartbeatMode.Register, [], [Session], []));
        var token = taken.Acquire[0].Token;
        Assert.True(token > 0);

        var planner = new RecordingPlanner(new BalancedPlanner(0, TimeProvider.System, PlannerTimings.From(options)));
        await using var redis = await fixture.ConnectAsync();
        await using var b = new LeaseManager(redis, options, StaticSessionSource.FromIds([Session]), planner, null, null, null);

        // First cycle: b knows nothing about the session and probes it, learning the holder and its PTTL.
        await b.RunCycleAsync();
        Assert.Contains(Session, planner.Cycles[^1].Plan.Acquire);
        Assert.False(b.IsOwned(Session));
        var probed = planner.Cycles[^1].At;

        // The holder heartbeats on its cadence (which renews its lease), past the expiry b learnt (one lease TTL).
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < options.LeaseTtl * 1.3)
        {
            await Task.Delay(options.RenewInterval / 2);
            var renewed = await ghost.RunAsync(new CycleRequest(HeartbeatMode.Beat, [], [], []));
            Assert.False(renewed.Lapsed);
            await b.RunCycleAsync();
        }
        // Within twice the TTL (after that b checks again on purpose) b kept it as held elsewhere, no new probe.
        var recheck = probed + (long)(2 * options.LeaseTtl.TotalSeconds * Stopwatch.Frequency);
        var later = planner.Cycles.Where(c => c.At > probed && c.At < recheck).ToList();
        Assert.Contains(later, c => Stopwatch.GetElapsedTime(probed, c.At) > options.LeaseTtl);
        Assert.All(later, c => Assert.Equal("ghost", c.Input.HeldElsewhere.GetValueOrDefault(Session)));
        Assert.All(later, c => Assert.DoesNotContain(Session, c.Plan.Acquire));

        // The holder stops (no release): its heartbeat expires and b takes the lease.
        await Eventually.TrueAsync(
            async () =>
            {
                await b.RunCycleAsync();
                return b.IsOwned(Session);
            },
            TimeSpan.FromSeconds(30),
            "b takes the lease over once the holder stopped renewing");
    }
}

public sealed class ForeignLeaseTests_RedisServer(RedisServerFixture f) : ForeignLeaseTests(f), IClassFixture<RedisServerFixture>;

public sealed class ForeignLeaseTests_Garnet(GarnetFixture f) : ForeignLeaseTests(f), IClassFixture<GarnetFixture>;
