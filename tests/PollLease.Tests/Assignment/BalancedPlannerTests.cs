using CsCheck;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using PollLease.Assignment;
using PollLease.Coordination;

namespace PollLease.Tests.Assignment;

/// <summary>The planner's decisions on a fake clock: who takes a silent instance's sessions, hand-offs, and the acquisition cap.</summary>
public sealed class BalancedPlannerTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(3);
    private static readonly PlannerTimings Timings = new(StaleAfter: TimeSpan.FromSeconds(1.2), HandOffBound: TimeSpan.FromSeconds(2), LeaseTtl: Ttl);
    private static readonly string[] Sessions = Enumerable.Range(0, 100).Select(i => $"session-{i:D6}").ToArray();
    private static readonly TimeSpan Fresh = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Silent = TimeSpan.FromSeconds(2);

    private static LeasePlanInput Input(string self, string[] live, IEnumerable<string> held, Dictionary<string, string>? elsewhere = null, Dictionary<string, TimeSpan>? ages = null, IReadOnlyCollection<string>? sessions = null) =>
        new(self, live, sessions ?? Sessions, held.ToHashSet(StringComparer.Ordinal), elsewhere ?? [], new HashSet<string>(), new Dictionary<string, string>())
        {
            HeartbeatAge = ages ?? live.ToDictionary(n => n, _ => Fresh),
        };

    private static BalancedPlanner Planner(FakeTimeProvider time) => new(0, time, Timings);

    [Fact]
    public void Property_a_silent_instance_is_found_stale_at_least_two_cycles_before_its_leases_expire_when_the_timings_allow()
    {
        // Any options the validator accepts: the stale threshold never drops below one cycle plus the retry interval
        // (a healthy instance must not look stale), and leaves two cycles before expiry whenever that much room exists.
        var ms = Gen.Int[50, 20_000];
        Gen.Select(ms, ms, ms, ms, ms).Sample(t =>
        {
            var (renew, retry, margin, timeout, extra) = t;
            var options = new PollLeaseOptions
            {
                RenewInterval = TimeSpan.FromMilliseconds(renew),
                HeartbeatInterval = TimeSpan.FromMilliseconds(renew),
                RetryInterval = TimeSpan.FromMilliseconds(retry),
                SafetyMargin = TimeSpan.FromMilliseconds(margin),
                LeaseTtl = TimeSpan.FromMilliseconds((2 * renew) + margin + extra),
                OperationTimeout = TimeSpan.FromMilliseconds(timeout),
            };
            var timings = PlannerTimings.From(options);
            Assert.True(timings.StaleAfter >= options.CycleInterval + Min(options.RetryInterval, options.OperationTimeout));
            Assert.True(timings.StaleAfter <= options.CycleInterval + options.OperationTimeout);
            if (options.LeaseTtl - (2 * options.CycleInterval) >= options.CycleInterval + options.RetryInterval)
            {
                Assert.True(timings.StaleAfter + (2 * options.CycleInterval) <= options.LeaseTtl);
            }
        }, iter: 500);

        static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
    }

    [Fact]
    public void Each_instance_tries_only_its_own_sessions_and_hands_off_the_rest()
    {
        var time = new FakeTimeProvider();
        var live = new[] { "a", "b", "c" };
        var assignment = BalancedAssignment.Compute(live, Sessions);
        var plan = Planner(time).Plan(Input("b", live, []));
        Assert.Equal(assignment.SessionsOf("b").Order(StringComparer.Ordinal), plan.Acquire.Order(StringComparer.Ordinal));
        Assert.Empty(plan.Release);

        // Holding everything (it was alone a moment ago): keeps its share and hands off the others' to them.
        var all = Planner(time).Plan(Input("b", live, Sessions));
        Assert.Empty(all.Acquire);
        Assert.Equal(Sessions.Except(assignment.SessionsOf("b")).Order(StringComparer.Ordinal), all.Release.Select(r => r.SessionId).Order(StringComparer.Ordinal));
        Assert.All(all.Release, r => Assert.Equal(LeaseReasons.Rebalance, r.Reason));
    }

    [Fact]
    public void A_burst_of_joins_is_handed_off_once_when_the_membership_has_been_quiet_for_the_settle_time()
    {
        var time = new FakeTimeProvider();
        var settle = TimeSpan.FromMilliseconds(500);
        var planner = new BalancedPlanner(0, time, Timings with { Settle = settle });
        // a started alone and took everything; b, c and d start one after another, 200 ms apart.
        Assert.Empty(planner.Plan(Input("a", ["a"], Sessions)).Release);
        string[][] bursts = [["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"]];
        var held = new HashSet<string>(Sessions, StringComparer.Ordinal);
        foreach (var live in bursts)
        {
            time.Advance(TimeSpan.FromMilliseconds(200));
            var plan = planner.Plan(Input("a", live, held));
            Assert.Empty(plan.Release);
        }
        // Quiet for the settle time: everything that is not a's goes, once, straight to its owner among all four.
        time.Advance(settle);
        var final = BalancedAssignment.Compute(["a", "b", "c", "d"], Sessions);
        var handOff = planner.Plan(Input("a", bursts[^1], held)).Release.Select(r => r.SessionId).ToList();
        Assert.Equal(Sessions.Except(final.SessionsOf("a")).Order(StringComparer.Ordinal), handOff.Order(StringComparer.Ordinal));
        held.ExceptWith(handOff);
        time.Advance(TimeSpan.FromMilliseconds(300));
        Assert.Empty(planner.Plan(Input("a", bursts[^1], held)).Release);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_silent_instances_sessions_go_straight_to_their_owners_without_it_and_stay_there_when_it_leaves(bool published)
    {
        var live = new[] { "a", "b", "c", "d" };
        var before = BalancedAssignment.Compute(live, Sessions);
        var after = published ? BalancedAssignment.Compute(["a", "b", "d"], Sessions, 0, before.Owners) : BalancedAssignment.Compute(["a", "b", "d"], Sessions);
        var basis = published ? PublishedAssignment.Parse(1, PublishedAssignment.Serialize(before.Owners), out _) : null;
        var orphans = before.SessionsOf("c");
        var ages = live.ToDictionary(n => n, n => n == "c" ? Silent : Fresh);
        foreach (var self in new[] { "a", "b", "d" })
        {
            var time = new FakeTimeProvider();
            var planner = Planner(time);
            planner.UseBase(basis);
            var mine = before.SessionsOf(self);
            // c still registered but stale: this instance plans with the assignment without c.
            var plan = planner.Plan(Input(self, live, mine, ages: ages));
            Assert.Equal(after.SessionsOf(self).Except(mine).Order(StringComparer.Ordinal), plan.Acquire.Order(StringComparer.Ordinal));
            Assert.Equal(mine.Except(after.SessionsOf(self)).Order(StringComparer.Ordinal), plan.Release.Select(r => r.SessionId).Order(StringComparer.Ordinal));
            Assert.Contains("c", planner.Stale);
            if (published)
            {
                // From the published assignment only c's sessions move: this instance gains some of them, loses nothing.
                Assert.All(plan.Acquire, s => Assert.Contains(s, orphans));
                Assert.Empty(plan.Release);
            }

            // Once the registry drops c the assignment is the same one: nothing moves a second time.
            var taken = mine.Except(plan.Release.Select(r => r.SessionId)).Concat(plan.Acquire).ToArray();
            time.Advance(TimeSpan.FromSeconds(1));
            var later = planner.Plan(Input(self, ["a", "b", "d"], taken));
            Assert.Empty(later.Acquire);
            Assert.Empty(later.Release);
        }
    }

    [Fact]
    public void A_stale_instance_is_no_hand_off_target_until_it_heartbeats_again()
    {
        var time = new FakeTimeProvider();
        var log = new FakeLogger();
        var planner = new BalancedPlanner(0, time, Timings, log);
        var live = new[] { "a", "b" };
        var bs = BalancedAssignment.Compute(live, Sessions).SessionsOf("b");
        var stale = planner.Plan(Input("a", live, Sessions, ages: new() { ["a"] = Fresh, ["b"] = Silent }));
        Assert.Empty(stale.Release);

        var back = planner.Plan(Input("a", live, Sessions, ages: new() { ["a"] = Fresh, ["b"] = Fresh }));
        Assert.Equal(bs.Order(StringComparer.Ordinal), back.Release.Select(r => r.SessionId).Order(StringComparer.Ordinal));
        // Logged once per change, not once per cycle.
        Assert.Equal([8005, 8006], log.Collector.GetSnapshot().Select(r => r.Id.Id));
    }

    [Fact]
    public void An_old_view_of_the_fleet_judges_nobody_stale()
    {
        var time = new FakeTimeProvider();
        var live = new[] { "a", "b" };
        var input = Input("a", live, [], ages: new() { ["a"] = Fresh, ["b"] = Silent }) with { ViewAge = TimeSpan.FromSeconds(5) };
        var plan = Planner(time).Plan(input);
        Assert.Equal(BalancedAssignment.Compute(live, Sessions).SessionsOf("a").Order(StringComparer.Ordinal), plan.Acquire.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_hand_off_the_target_does_not_take_is_taken_back_after_the_bound_and_the_target_backs_off()
    {
        var time = new FakeTimeProvider();
        var log = new FakeLogger();
        var planner = new BalancedPlanner(0, time, Timings, log);
        var live = new[] { "a", "b" };
        var session = BalancedAssignment.Compute(live, Sessions).SessionsOf("b")[0];
        string[] one = [session];

        Assert.Empty(planner.Plan(Input("a", live, [], sessions: one)).Acquire);
        // a was alone and took it; b registered: a hands it off.
        var first = planner.Plan(Input("a", live, one, sessions: one));
        Assert.Equal([(session, LeaseReasons.Rebalance)], first.Release);

        // b never takes it (cut off, yet its heartbeat looks fine). Before the bound a leaves it to b.
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(planner.Plan(Input("a", live, [], sessions: one)).Acquire);
        // After the bound a tries it again...
        time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal([session], planner.Plan(Input("a", live, [], sessions: one)).Acquire);
        // ...gets it: b failed and backs off for a lease TTL; a keeps polling it meanwhile.
        time.Advance(TimeSpan.FromMilliseconds(100));
        var kept = planner.Plan(Input("a", live, one, sessions: one));
        Assert.Empty(kept.Release);
        Assert.True(planner.HandOffs.InBackoff("b", time.GetTimestamp()));
        Assert.Contains($"session={session} target=b; no hand-offs to it for 00:00:03", log.LatestRecord.Message, StringComparison.Ordinal);
        time.Advance(Ttl);
        Assert.Equal([(session, LeaseReasons.Rebalance)], planner.Plan(Input("a", live, one, sessions: one)).Release);

        // This time b takes it: the check finds b holding it and b's record is clean again.
        time.Advance(TimeSpan.FromSeconds(2.5));
        var check = planner.Plan(Input("a", live, [], sessions: one));
        Assert.Equal([session], check.Acquire);
        time.Advance(TimeSpan.FromMilliseconds(100));
        planner.Plan(Input("a", live, [], new() { [session] = "b" }, sessions: one));
        Assert.Empty(planner.HandOffs.Pending);
        Assert.False(planner.HandOffs.InBackoff("b", time.GetTimestamp()));
    }

    [Fact]
    public void A_second_failed_hand_off_doubles_the_backoff()
    {
        var time = new FakeTimeProvider();
        var tracker = new HandOffTracker(Ttl, TimeSpan.FromSeconds(2), time.TimestampFrequency);
        var none = new Dictionary<string, string>();
        tracker.Observe(new HashSet<string> { "s" }, none, time.GetTimestamp());

        // Handed to b, not taken, back with us after the bound; then a lease TTL later.
        void FailedHandOff()
        {
            tracker.HandedOff("s", "b", time.GetTimestamp());
            tracker.Observe(new HashSet<string>(), none, time.GetTimestamp());
            time.Advance(TimeSpan.FromSeconds(2));
            tracker.Observe(new HashSet<string> { "s" }, none, time.GetTimestamp());
            time.Advance(Ttl);
        }

        FailedHandOff();
        Assert.False(tracker.InBackoff("b", time.GetTimestamp()));
        FailedHandOff();
        Assert.True(tracker.InBackoff("b", time.GetTimestamp()));
        time.Advance(Ttl);
        Assert.False(tracker.InBackoff("b", time.GetTimestamp()));
    }

    /// <summary>
    /// Whatever the fleet does (instances stale or fresh at random, acquisitions won or lost at random, held leases
    /// lost at random, held elsewhere or not), one instance never acquires one session more than twice per lease TTL.
    /// </summary>
    [Fact]
    public void Property_under_any_faults_an_instance_acquires_a_session_at_most_twice_per_lease_ttl()
    {
        var sessions = Sessions[..12];
        var step = Gen.Select(Gen.Int[0, 7], Gen.Int[0, 7], Gen.Int[0, 3], Gen.Int[20, 700], Gen.Int);
        Gen.Select(step.Array[20, 120], Gen.Int[2, 4]).Sample(t =>
        {
            var (steps, count) = t;
            var live = new[] { "a", "b", "c", "d" }[..count];
            var time = new FakeTimeProvider();
            var planner = Planner(time);
            var held = new HashSet<string>(StringComparer.Ordinal);
            var acquisitions = new Dictionary<string, List<DateTimeOffset>>(StringComparer.Ordinal);
            foreach (var (staleMask, winMask, loseEvery, advanceMs, seed) in steps)
            {
                var random = new Random(seed);
                var ages = live.ToDictionary(n => n, n => n != "a" && (staleMask >> Array.IndexOf(live, n) & 1) == 1 ? Silent : Fresh);
                var elsewhere = sessions.Where(s => !held.Contains(s) && random.Next(4) == 0).ToDictionary(s => s, _ => live[random.Next(live.Length)]);
                elsewhere.Remove("a");
                var plan = planner.Plan(Input("a", live, held, elsewhere.Where(kv => kv.Value != "a").ToDictionary(), ages, sessions));
                // A lease is lost (taken, expired, deadline) at the earliest in the cycle after the one that got it.
                var losable = held.ToArray();
                foreach (var (session, _) in plan.Release)
                {
                    held.Remove(session);
                }
                foreach (var session in plan.Acquire)
                {
                    // The environment grants or refuses each attempt as it likes.
                    if (((winMask + session.GetHashCode()) & 1) == 0 || random.Next(3) > 0)
                    {
                        held.Add(session);
                        (acquisitions.TryGetValue(session, out var list) ? list : acquisitions[session] = []).Add(time.GetUtcNow());
                    }
                }
                if (loseEvery > 0 && losable.Length > 0 && random.Next(loseEvery + 1) == 0)
                {
                    held.Remove(losable[random.Next(losable.Length)]);
                }
                time.Advance(TimeSpan.FromMilliseconds(advanceMs));
            }
            foreach (var (session, times) in acquisitions)
            {
                for (var i = 2; i < times.Count; i++)
                {
                    Assert.True(times[i] - times[i - 2] >= Ttl, $"{session} acquired 3 times within {(times[i] - times[i - 2]).TotalMilliseconds} ms");
                }
            }
        }, iter: 300);
    }

    [Fact]
    public void A_target_that_never_takes_its_sessions_gets_them_a_few_times_not_in_a_loop()
    {
        var time = new FakeTimeProvider();
        var planner = Planner(time);
        var live = new[] { "a", "b" };
        var theirs = BalancedAssignment.Compute(live, Sessions).SessionsOf("b").ToHashSet(StringComparer.Ordinal);
        var held = new HashSet<string>(Sessions, StringComparer.Ordinal);
        var acquired = 0;
        var unpolled = TimeSpan.Zero;
        // b heartbeats but takes nothing, for 40 lease TTLs, cycles every 300 ms.
        for (var cycle = 0; cycle < 400; cycle++)
        {
            var plan = planner.Plan(Input("a", live, held));
            held.ExceptWith(plan.Release.Select(r => r.SessionId));
            acquired += plan.Acquire.Count(theirs.Contains);
            held.UnionWith(plan.Acquire);
            unpolled += TimeSpan.FromMilliseconds(300) * theirs.Count(s => !held.Contains(s)) / theirs.Count;
            time.Advance(TimeSpan.FromMilliseconds(300));
        }
        // Backoff 1, 2, 4, 8, 8, ... TTLs after each failed hand-off: about 8 rounds in 40 TTLs, not 400.
        Assert.InRange(acquired / theirs.Count, 1, 10);
        Assert.True(unpolled < TimeSpan.FromSeconds(40 * 3) / 4, $"b's sessions went unpolled {unpolled} in total");
    }
}
