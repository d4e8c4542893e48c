using PollLease.ChaosTests.Harness;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace PollLease.ChaosTests;

/// <summary>
/// Garbage written straight into a running fleet's Redis: each bad key costs at most its own session (skipped
/// with a logged warning); no instance crashes and every other session keeps being polled.
/// </summary>
public sealed class BadDataTests(ITestOutputHelper output) : IClassFixture<ChaosServerFixture>
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Corrupted_keys_cost_only_their_own_session_and_nothing_crashes()
    {
        await using var run = await ChaosRun.StartAsync(output);
        var children = new[] { run.StartChild(1), run.StartChild(1) };
        await run.WaitBalancedAsync(2, Settle);
        var from = DateTimeOffset.UtcNow;
        await run.WaitAllPolledSinceAsync(from, Settle);

        var db = run.Admin.GetDatabase();
        var p = "{" + run.Prefix + "}";
        // A lease value nobody wrote (no owner|token, no TTL), and a lease key of the wrong type.
        await db.StringSetAsync($"{p}:lease:chaos-000", "garbage");
        await db.KeyDeleteAsync($"{p}:lease:chaos-001");
        await db.HashSetAsync($"{p}:lease:chaos-001", "x", "y");
        // A fence that is not a number, and one of the wrong type.
        await db.StringSetAsync($"{p}:fence:chaos-002", "not-a-number");
        await db.KeyDeleteAsync($"{p}:fence:chaos-003");
        await db.SetAddAsync($"{p}:fence:chaos-003", "x");
        // A session hash with a broken interval (the catalog version bump makes every instance re-read it).
        await db.HashSetAsync($"{p}:session:chaos-004", "interval_ms", "soon");
        await db.StringIncrementAsync($"{p}:sessions:version");
        // Message log elements that are not JSON, and a log key of the wrong type.
        await db.ListRightPushAsync($"{p}:messages:chaos-005", ["\u0000\u00ff binary", "{\"token\":\"x\"}"]);
        await db.KeyDeleteAsync($"{p}:messages:chaos-006");
        await db.SetAddAsync($"{p}:messages:chaos-006", "x");
        var injected = DateTimeOffset.UtcNow;
        string[] damaged = ["chaos-000", "chaos-001", "chaos-003", "chaos-004", "chaos-006"];
        run.Note("garbage written into 7 sessions' keys");

        // Everything else keeps being polled, by both instances, with no gap beyond the usual bound.
        var healthy = run.Sessions.Except(damaged).ToArray();
        await run.WaitAllPolledSinceAsync(injected + ChaosRun.Interval, Settle, healthy);
        await run.WaitBalancedAsync(2, Settle, except: damaged);
        Assert.All(children, c => Assert.False(c.Process.HasExited, $"{c.Name} exited:\n{c.Output}"));

        var warnings = string.Join("\n", children.SelectMany(c => c.Lines).Select(l => l.Text).Where(t => t.Contains("warn", StringComparison.Ordinal)).Distinct().Take(40));
        run.Note("warnings:\n" + warnings);
        Assert.Contains("Lease value in unexpected format: endpoint=chaos-000", warnings, StringComparison.Ordinal);
        Assert.Contains("chaos-004", warnings, StringComparison.Ordinal);
    }
}
