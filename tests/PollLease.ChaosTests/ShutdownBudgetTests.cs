using System.Diagnostics;
using System.Text.RegularExpressions;
using PollLease.ChaosTests.Harness;
using Xunit.Abstractions;

namespace PollLease.ChaosTests;

/// <summary>
/// pollctl stopped while its Redis link is silent: every step of the stop is bounded by ShutdownTimeout (3 s), the
/// process exits 0 and says how many leases were left to expire. Before the bound it exited 1 after about 11 s with an
/// unhandled UNSUBSCRIBE timeout.
/// </summary>
public sealed partial class ShutdownBudgetTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(90);

    /// <summary>ShutdownTimeout (3 s) plus slack for process exit on a loaded machine; far below the old 11 s.</summary>
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(7);

    [Fact]
    public async Task Pollctl_stopped_while_its_Redis_link_is_blackholed_exits_0_in_bounded_time_and_counts_the_leases_left_to_expire()
    {
        await using var run = await ChaosRun.StartAsync(output);
        await using var proxy = new TcpProxy(run.Redis.Port);
        var child = run.StartChild(2, proxy.ConnectionString);
        await run.WaitBalancedAsync(2, Settle);

        proxy.Blackhole();
        var stopwatch = Stopwatch.StartNew();
        child.Terminate();
        await child.WaitForExitAsync(TimeSpan.FromSeconds(60));
        var elapsed = stopwatch.Elapsed;
        run.Note($"SIGTERM to exit with Redis blackholed: {elapsed.TotalSeconds:0.00} s");

        Assert.True(child.Process.ExitCode == 0, child.Output);
        Assert.True(elapsed < ExitBound, $"exit took {elapsed}");
        var left = LeftToExpire().Match(child.Output);
        Assert.True(left.Success, child.Output);
        // Both instances held their share of the 30 sessions; none could be released.
        Assert.Equal(run.Sessions.Count, int.Parse(left.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.DoesNotContain("Unhandled exception", child.Output, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"pollctl: stopped; (\d+) leases left to expire")]
    private static partial Regex LeftToExpire();
}
