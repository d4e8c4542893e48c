using PollLease.ChaosTests.Harness;
using Xunit.Abstractions;

namespace PollLease.ChaosTests;

/// <summary>Many instances arriving together, and the fleet shrinking and growing (graceful stops, SIGTERM).</summary>
public sealed class ScaleTests(ITestOutputHelper output) : IClassFixture<ChaosServerFixture>
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Twenty_instances_join_at_once_then_the_fleet_scales_10_to_2_to_10()
    {
        await using var run = await ChaosRun.StartAsync(output);
        // Three processes (in-process instances keep a 2-core machine usable), twenty instances, all at once.
        var eight = run.StartChild(8);
        run.StartChild(2);
        var ten = run.StartChild(10);
        await run.WaitBalancedAsync(20, Settle);
        var from = DateTimeOffset.UtcNow;
        await run.WaitAllPolledSinceAsync(from, Settle);
        run.Note("20 instances balanced, every session polled");

        await ScaleInAsync(run, ten, 10);
        await ScaleInAsync(run, eight, 2);

        run.StartChild(8);
        await run.WaitBalancedAsync(10, Settle);
        await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
        run.Note("scaled out to 10");
        await run.CheckAsync(from);
    }

    private static async Task ScaleInAsync(ChaosRun run, PollCtlChild child, int remaining)
    {
        child.Terminate();
        await child.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, child.Process.ExitCode);
        await run.WaitBalancedAsync(remaining, Settle);
        await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
        run.Note($"scaled in to {remaining}");
    }
}
