using System.Diagnostics;
using System.Globalization;
using System.Text;
using PollLease.Assignment;
using PollLease.Coordination;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.Bench;

/// <summary>
/// `profile`: a Stopwatch breakdown of the lease cycle at S = 100,000 (one instance holding every lease, and the
/// planning an instance of a 50-strong fleet does), so the slowest step is found by measurement, not guessed.
/// Redis-side time is INFO commandstats usec of the script; the client side of a round trip is the rest.
/// </summary>
internal static class ProfileBench
{
    public static async Task<string> RunAsync(RedisServerProcess redis, bool quick)
    {
        var s = quick ? 20_000 : 100_000;
        var repeats = quick ? 3 : 9;
        var ids = BalanceBench.SessionIds(s);
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"### profile: one lease cycle at S = {s:N0}, min (median) of {repeats} runs").AppendLine();
        md.AppendLine("| step | min ms | median ms |");
        md.AppendLine("|---|---:|---:|");
        void Row(string step, IEnumerable<double> ms) => md.AppendLine(CultureInfo.InvariantCulture, $"| {step} | {ms.Min():0.0} | {Median(ms):0.0} |");

        foreach (var n in new[] { 1, 50 })
        {
            var nodes = BalanceBench.NodeIds(n, 5);
            Row($"BalancedAssignment.Compute, N = {n} (on every membership change)", Times(repeats, () => BalancedAssignment.Compute(nodes, ids)));
            var planner = new BalancedPlanner(0, TimeProvider.System, PlannerTimings.From(new PollLeaseOptions()));
            var mine = BalancedAssignment.Compute(nodes, ids).SessionsOf(nodes[0]).ToHashSet(StringComparer.Ordinal);
            var input = new LeasePlanInput(nodes[0], nodes, ids, mine, new Dictionary<string, string>(), new HashSet<string>(), new Dictionary<string, string>());
            planner.Plan(input);
            Row($"BalancedPlanner.Plan, N = {n}, assignment cached, sessions as an array (every cycle; holds {mine.Count:N0})", Times(repeats, () => planner.Plan(input)));
            var asSet = input with { ActiveSessions = new HashSet<string>(ids, StringComparer.Ordinal) };
            planner.Plan(asSet);
            Row($"BalancedPlanner.Plan, N = {n}, assignment cached, sessions as a set (what LeaseManager now passes)", Times(repeats, () => planner.Plan(asSet)));
        }

        var prefix = $"prof{Guid.NewGuid():N}"[..12];
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true").ConfigureAwait(false);
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",syncTimeout=20000,asyncTimeout=20000").ConfigureAwait(false);
        var options = ScaleBench.Options(prefix, "profiled", TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(10));
        options.OperationTimeout = TimeSpan.FromSeconds(8);
        // A made-up fleet on a fresh prefix: its first epoch needs no data-loss quarantine (a first start would otherwise
        // wait one lease TTL before acquiring, which is not what this measures).
        await DataLossGuard.EstablishNewFleetAsync(connection.GetDatabase(), new RedisKeys(prefix)).ConfigureAwait(false);
        await using var manager = new LeaseManager(connection, options, StaticSessionSource.FromIds(ids));
        using var cycles = new ScaleBench.CycleRecorder();

        cycles.Start();
        var first = await RoundTripAsync(server, () => manager.RunCycleAsync()).ConfigureAwait(false);
        var firstCycle = cycles.Stop();
        md.AppendLine(CultureInfo.InvariantCulture, $"| first cycle, acquires {manager.OwnedSessions().Count:N0} (register round trip + cycle): whole / Redis script | {firstCycle.Sum():0.0} / {first.ScriptMs:0.0} | |");
        // The rest follow at most LeaseTable.MaxAcquirePerCycle a request, one cycle after another.
        var acquireScripts = new List<double> { first.ScriptMs };
        var acquireWatch = Stopwatch.StartNew();
        while (manager.OwnedSessions().Count < s)
        {
            acquireScripts.Add((await RoundTripAsync(server, () => manager.RunCycleAsync()).ConfigureAwait(false)).ScriptMs);
        }
        md.AppendLine(CultureInfo.InvariantCulture, $"| acquiring all {s:N0}: cycles / whole time / longest script | {acquireScripts.Count} / {acquireWatch.Elapsed.TotalMilliseconds + firstCycle.Sum():0} / {acquireScripts.Max():0.00} | |");

        var whole = new List<double>();
        var script = new List<double>();
        for (var i = 0; i < repeats; i++)
        {
            cycles.Start();
            var t = await RoundTripAsync(server, () => manager.RunCycleAsync()).ConfigureAwait(false);
            whole.Add(cycles.Stop().Sum());
            script.Add(t.ScriptMs);
        }
        Row($"steady cycle holding {s:N0}: whole (plan + build + round trip + apply)", whole);
        Row("  of which Redis runs the script", script);
        md.AppendLine(CultureInfo.InvariantCulture, $"| longest steady script holding {s:N0} (heartbeat + a slice of safety refreshes) | {script.Max():0.00} | |");

        var store = new LeaseStore(connection, manager.Keys, manager.InstanceId, options);
        // Renewing is the heartbeat; the most a cycle adds is a full slice of safety refreshes.
        var slice = manager.OwnedSessions().Take(LeaseTable.MaxRefreshPerCycle).Select(l => new HeldLease(l.SessionId, l.Token)).ToList();
        var request = new CycleRequest(HeartbeatMode.Beat, slice, [], []);
        var trip = new List<double>();
        var scriptOnly = new List<double>();
        for (var i = 0; i < repeats; i++)
        {
            var t = await RoundTripAsync(server, () => store.RunAsync(request)).ConfigureAwait(false);
            trip.Add(t.WallMs);
            scriptOnly.Add(t.ScriptMs);
        }
        Row($"  worst case, a full slice of {slice.Count:N0} refreshes: LeaseStore.RunAsync alone (build + send + script + receive + parse)", trip);
        Row("  of which Redis runs the script", scriptOnly);
        Row("  client side of it (LeaseStore.RunAsync - script)", trip.Zip(scriptOnly, (a, b) => a - b));
        var stats = await ScaleBench.CommandStatsAsync(server).ConfigureAwait(false);
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Redis commands in that worst-case round trip: {stats.Sum(x => x.Value.Calls) / (double)Math.Max(1, stats.Where(x => x.Key is "evalsha" or "eval").Sum(x => x.Value.Calls)):0}.").AppendLine();
        return md.ToString();
    }

    private static async Task<(double WallMs, double ScriptMs)> RoundTripAsync(IServer server, Func<Task> action)
    {
        await server.ExecuteAsync("CONFIG", "RESETSTAT").ConfigureAwait(false);
        var watch = Stopwatch.StartNew();
        await action().ConfigureAwait(false);
        var wall = watch.Elapsed.TotalMilliseconds;
        var stats = await ScaleBench.CommandStatsAsync(server).ConfigureAwait(false);
        var usec = stats.Where(x => x.Key is "evalsha" or "eval").Sum(x => x.Value.Usec);
        return (wall, usec / 1000.0);
    }

    private static List<double> Times(int repeats, Action action)
    {
        var result = new List<double>();
        for (var i = 0; i < repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            result.Add(watch.Elapsed.TotalMilliseconds);
        }
        return result;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted[sorted.Length / 2];
    }
}
