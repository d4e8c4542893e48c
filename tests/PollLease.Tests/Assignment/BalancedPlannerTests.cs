using Microsoft.Extensions.Time.Testing;
using PollLease.Assignment;
using PollLease.Coordination;

namespace PollLease.Tests.Assignment;

public sealed class BalancedPlannerTests
{
    private static readonly string[] Sessions = Enumerable.Range(0, 100).Select(i => $"session-{i:D6}").ToArray();

    private static LeasePlanInput Input(string self, string[] live, IEnumerable<string> held, Dictionary<string, string>? elsewhere = null, IEnumerable<string>? handedOff = null, Dictionary<string, string>? orphaned = null) =>
        new(self, live, Sessions, held.ToHashSet(StringComparer.Ordinal), elsewhere ?? [], (handedOff ?? []).ToHashSet(StringComparer.Ordinal), orphaned ?? []);

    [Fact]
    public void The_takeover_candidate_probes_unknown_sessions_and_takes_orphaned_ones()
    {
        var planner = new BalancedPlanner(0, new FakeTimeProvider(), TimeSpan.FromSeconds(10));
        var assignment = BalancedAssignment.Compute(["first", "second"], Sessions);
        var mine = assignment.SessionsOf("second");
        var theirs = assignment.SessionsOf("first");

        var probe = planner.Plan(Input("second", ["first", "second"], mine));
        Assert.Equal(theirs.Order(StringComparer.Ordinal), probe.Acquire.Order(StringComparer.Ordinal));

        var orphaned = theirs.ToDictionary(s => s, _ => "first");
        var takeover = planner.Plan(Input("second", ["first", "second"], mine, orphaned: orphaned));
        Assert.Equal(theirs.Order(StringComparer.Ordinal), takeover.Acquire.Order(StringComparer.Ordinal));

        // Taken over from a silent owner that still looks live: kept, not handed back at once.
        var keep = planner.Plan(Input("second", ["first", "second"], Sessions));
        Assert.Empty(keep.Release);
    }

    [Fact]
    public void Sessions_just_handed_off_are_left_to_their_preferred_owner()
    {
        var planner = new BalancedPlanner(0, new FakeTimeProvider(), TimeSpan.FromSeconds(10));
        var assignment = BalancedAssignment.Compute(["a", "b", "c"], Sessions);
        var cs = assignment.SessionsOf("c");
        var plan = planner.Plan(Input("b", ["a", "b", "c"], assignment.SessionsOf("b"), handedOff: cs));
        Assert.DoesNotContain(plan.Acquire, cs.Contains);
    }
}
