using System.Globalization;
using System.Text;
using PollLease.Assignment;

namespace PollLease.Bench;

/// <summary>
/// `balance`: max load against ceil(S/N) and the sessions moved when one instance joins or leaves, against the
/// minimum (S/(N+1) on join, S/N on leave), over a grid of N x S. `hash`: FNV-1a against XxHash64 as the
/// rendezvous hash on realistic ids.
/// </summary>
internal static class BalanceBench
{
    public static readonly int[] QuickNodes = [1, 2, 3, 5, 10, 20, 50];
    public static readonly int[] QuickSessions = [1, 10, 100, 1_000, 10_000];
    public static readonly int[] FullNodes = [1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 40, 50];
    public static readonly int[] FullSessions = [1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000];

    public static string[] NodeIds(int n, int seed) =>
        Enumerable.Range(0, n).Select(i => $"vm-{1795569954384 + (seed * 7919) + (i * 104729)}-{(i * 2654435761u ^ (uint)seed) & 0xffffff:x6}").ToArray();

    public static string[] SessionIds(int s) => Enumerable.Range(0, s).Select(i => $"session-{i:D6}").ToArray();

    public static string Run(bool quick, double epsilon = 0)
    {
        var nodes = quick ? QuickNodes : FullNodes;
        var sessions = quick ? QuickSessions : FullSessions;
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"### balance: bounded-load rendezvous (epsilon = {epsilon})").AppendLine();
        md.AppendLine("Stateless: the assignment computed from the live set alone. From previous owners: computed from the live set and the assignment before the change (what the fleet does with the janitor's published assignment).").AppendLine();
        md.AppendLine("| N | S | max load / ceil(S/N) | moved on join / (S/(N+1)), stateless | on leave / leaver's share, stateless | on join, from previous owners | on leave, from previous owners | max load / ceil(S/N) after, from previous owners |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|");
        double worstBalance = 0, joinSum = 0, leaveSum = 0, stickyJoinSum = 0, stickyLeaveSum = 0, worstStickyBalance = 0;
        int points = 0, movePoints = 0;
        foreach (var n in nodes)
        {
            foreach (var s in sessions)
            {
                var ids = SessionIds(s);
                var members = NodeIds(n + 1, 1);
                var before = BalancedAssignment.Compute(members[..n], ids, epsilon);
                var joined = BalancedAssignment.Compute(members, ids, epsilon);
                var balance = (double)before.MaxLoad / Math.Ceiling((double)s / n);
                worstBalance = Math.Max(worstBalance, balance);
                points++;
                var joinRatio = Moved(before, joined, ids) / ((double)s / (n + 1));
                // The fleet's steady state from previous owners: the stateless assignment carried forward once (equal to
                // it at epsilon 0; with slack, every instance then holds at least floor(S/N)).
                var settled = BalancedAssignment.Compute(members[..n], ids, epsilon, before.Owners);
                var stickyJoined = BalancedAssignment.Compute(members, ids, epsilon, settled.Owners);
                var stickyJoinRatio = Moved(settled, stickyJoined, ids) / ((double)s / (n + 1));
                var stickyBalance = (double)stickyJoined.MaxLoad / Math.Ceiling((double)s / (n + 1));
                string leaveText = "-", stickyLeaveText = "-";
                if (n >= 2)
                {
                    var share = before.SessionsOf(members[0]).Count;
                    static double Ratio(BalancedAssignment from, BalancedAssignment to, string[] ids, int share)
                    {
                        var moved = Moved(from, to, ids);
                        return share == 0 ? (moved == 0 ? 1 : moved) : (double)moved / share;
                    }
                    var leaveRatio = Ratio(before, BalancedAssignment.Compute(members[1..n], ids, epsilon), ids, share);
                    var stickyLeft = BalancedAssignment.Compute(members[1..n], ids, epsilon, settled.Owners);
                    var stickyLeaveRatio = Ratio(settled, stickyLeft, ids, settled.SessionsOf(members[0]).Count);
                    stickyBalance = Math.Max(stickyBalance, stickyLeft.MaxLoad / Math.Ceiling((double)s / (n - 1)));
                    leaveText = leaveRatio.ToString("0.000", CultureInfo.InvariantCulture);
                    stickyLeaveText = stickyLeaveRatio.ToString("0.000", CultureInfo.InvariantCulture);
                    if (s >= n + 1)
                    {
                        leaveSum += leaveRatio;
                        stickyLeaveSum += stickyLeaveRatio;
                    }
                }
                worstStickyBalance = Math.Max(worstStickyBalance, stickyBalance);
                if (s >= n + 1 && n >= 2)
                {
                    joinSum += joinRatio;
                    stickyJoinSum += stickyJoinRatio;
                    movePoints++;
                }
                md.AppendLine(CultureInfo.InvariantCulture, $"| {n} | {s} | {balance:0.000} | {joinRatio:0.000} | {leaveText} | {stickyJoinRatio:0.000} | {stickyLeaveText} | {stickyBalance:0.000} |");
            }
        }
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Worst max load / ceil(S/N) over {points} grid points: **{worstBalance:0.000}** (target 1.000).");
        md.AppendLine(CultureInfo.InvariantCulture, $"Mean movement over the {movePoints} points with N >= 2 and S > N, stateless: join **{joinSum / movePoints:0.000} x** minimum, leave **{leaveSum / movePoints:0.000} x** minimum (target <= 1.15).");
        md.AppendLine(CultureInfo.InvariantCulture, $"Mean movement from previous owners: join **{stickyJoinSum / movePoints:0.000} x** minimum, leave **{stickyLeaveSum / movePoints:0.000} x** minimum (target <= 1.15); worst max load / ceil(S/N) after the change **{worstStickyBalance:0.000}**.");
        md.AppendLine();
        return md.ToString();
    }

    public static string Hashes()
    {
        var md = new StringBuilder();
        md.AppendLine("### hash: rendezvous hash on realistic ids (plain rendezvous, no cap)").AppendLine();
        md.AppendLine("Ids `session-000000`.. against instance ids `vm-<bootms>-<hex>`; max load / (S/N) without the cap (lower is better mixing), and the chi-squared of the loads against uniform (expected about N-1).").AppendLine();
        md.AppendLine("| hash | N | S | max / mean | chi-squared (df = N-1) | ns per score |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var hash in new[] { RendezvousHash.Fnv1a, RendezvousHash.XxHash64 })
        {
            foreach (var (n, s) in new[] { (3, 9_999), (10, 10_000), (50, 10_000) })
            {
                var nodes = NodeIds(n, 3);
                var load = new int[n];
                var watch = System.Diagnostics.Stopwatch.StartNew();
                foreach (var session in SessionIds(s))
                {
                    var best = 0;
                    var bestScore = 0UL;
                    for (var j = 0; j < n; j++)
                    {
                        var score = RendezvousScore.Score(session, nodes[j], hash);
                        if (j == 0 || score > bestScore)
                        {
                            best = j;
                            bestScore = score;
                        }
                    }
                    load[best]++;
                }
                var ns = watch.Elapsed.TotalNanoseconds / ((double)n * s);
                var mean = (double)s / n;
                var chi = load.Sum(l => (l - mean) * (l - mean) / mean);
                md.AppendLine(CultureInfo.InvariantCulture, $"| {hash} | {n} | {s} | {load.Max() / mean:0.000} | {chi:0.0} | {ns:0} |");
            }
        }
        md.AppendLine();
        return md.ToString();
    }

    /// <summary>Only the summary lines of <see cref="Run"/> for another epsilon.</summary>
    public static string Summary(bool quick, double epsilon)
    {
        var full = Run(quick, epsilon);
        var lines = full.Split('\n').Where(l => l.StartsWith("Worst", StringComparison.Ordinal) || l.StartsWith("Mean", StringComparison.Ordinal));
        return $"With epsilon = {epsilon.ToString(CultureInfo.InvariantCulture)}:\n\n" + string.Join("\n", lines) + "\n\n";
    }

    private static int Moved(BalancedAssignment a, BalancedAssignment b, string[] sessions) =>
        sessions.Count(s => !string.Equals(a.PreferredOwner(s), b.PreferredOwner(s), StringComparison.Ordinal));
}

/// <summary>
/// `recompute`: what one instance spends recomputing its assignment when an instance joins or leaves a fleet of N
/// holding 100,000 sessions, from the fleet's published assignment (the planner's real path), median of several runs.
/// </summary>
internal static class RecomputeBench
{
    public const int SessionCount = 100_000;

    public static string Run(bool quick)
    {
        var runs = quick ? 9 : 21;
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"### recompute: assignment on a membership change, {SessionCount:N0} sessions").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Median (and fastest) of {runs} runs; the machine is shared, so the median carries its load. `Compute` is BalancedAssignment.Compute from the published assignment as a dictionary (the janitor's path: it numbers the sessions and resolves the owners each time); `plan` is one BalancedPlanner.Plan of an instance that sees the change (what a lease cycle spends on it: the planner keeps both across cycles). Target: under 20 ms per instance.").AppendLine();
        md.AppendLine("| N before | change | Compute | plan |");
        md.AppendLine("|---:|---|---:|---:|");
        var sessions = BalanceBench.SessionIds(SessionCount);
        var active = new HashSet<string>(sessions, StringComparer.Ordinal);
        var worst = 0.0;
        foreach (var n in new[] { 10, 50 })
        {
            var members = BalanceBench.NodeIds(n + 1, 7);
            var settled = BalancedAssignment.Compute(members[..n], sessions);
            var published = PublishedAssignment.Parse(1, PublishedAssignment.Serialize(settled.Owners), out _)!;
            foreach (var (change, after) in new[] { ("join", members), ("leave", members[1..n]) })
            {
                var compute = Median(runs, () => BalancedAssignment.Compute(after, sessions, 0, published.Owners));
                var self = members[2];
                var plan = Median(runs, () =>
                {
                    var planner = NewPlanner();
                    planner.UseBase(published);
                    planner.Plan(Input(self, members[..n], settled.SessionsOf(self), active));
                    return planner;
                }, planner => planner.Plan(Input(self, after, settled.SessionsOf(self), active)));
                worst = Math.Max(worst, plan.Median);
                md.AppendLine(CultureInfo.InvariantCulture, $"| {n} | {change} | {compute.Median:0.0} ms ({compute.Min:0.0}) | {plan.Median:0.0} ms ({plan.Min:0.0}) |");
            }
        }
        var fifty = BalanceBench.NodeIds(50, 7);
        var stateless = Median(runs, () => BalancedAssignment.Compute(fifty, sessions));
        md.AppendLine(CultureInfo.InvariantCulture, $"| 50 | none published: stateless, every session scored against every instance | {stateless.Median:0.0} ms ({stateless.Min:0.0}) | - |");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Slowest plan on a membership change, median: **{worst:0.0} ms** (target < 20 ms).");
        md.AppendLine();
        return md.ToString();
    }

    private static BalancedPlanner NewPlanner() => new(0, TimeProvider.System, PlannerTimings.From(new PollLease.Coordination.PollLeaseOptions()));

    private static LeasePlanInput Input(string self, string[] live, IReadOnlyList<string> held, HashSet<string> active) =>
        new(self, live, active, held.ToHashSet(StringComparer.Ordinal), new Dictionary<string, string>(), new HashSet<string>(), new Dictionary<string, string>());

    private static (double Median, double Min) Median(int runs, Func<object> action) => Median(runs, () => 0, _ => action());

    private static (double Median, double Min) Median<T>(int runs, Func<T> setup, Action<T> action)
    {
        var times = new List<double>();
        for (var i = 0; i < runs + 1; i++)
        {
            var state = setup();
            GC.Collect();
            var watch = System.Diagnostics.Stopwatch.StartNew();
            action(state);
            if (i > 0)
            {
                // The first run warms up (JIT, caches); it is not counted.
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
        }
        times.Sort();
        return (times[times.Count / 2], times[0]);
    }
}
