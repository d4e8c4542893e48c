using PollLease.ChaosTests.Harness;
using Xunit.Abstractions;

namespace PollLease.ChaosTests;

/// <summary>Redis itself fails: restarted with its data, restarted empty, or cut off from one instance.</summary>
public sealed class RedisFaultTests(ITestOutputHelper output) : IClassFixture<ChaosServerFixture>
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(90);

    /// <summary>
    /// Far above the few seconds a slow instance takes to drop out (its heartbeats stop counting), far below
    /// "until the link heals": before the fix, its late cycles kept its sessions leased and unpolled indefinitely.
    /// </summary>
    private static readonly TimeSpan SlowLinkBound = TimeSpan.FromSeconds(30);

    /// <summary>Two one-instance children, balanced, every session polled since the returned time.</summary>
    private static async Task<DateTimeOffset> TwoPollingInstancesAsync(ChaosRun run)
    {
        run.StartChild(1);
        run.StartChild(1);
        await run.WaitBalancedAsync(2, Settle);
        var from = DateTimeOffset.UtcNow;
        await run.WaitAllPolledSinceAsync(from, Settle);
        return from;
    }

    [RedisServerFact("restart with data: SAVE and an RDB file; the embedded Garnet server keeps nothing on disk")]
    public async Task Redis_restarted_with_its_data_the_fleet_recovers_with_increasing_tokens()
    {
        await using var run = await ChaosRun.StartAsync(output);
        var from = await TwoPollingInstancesAsync(run);

        // SAVE, kill -9, start on the same port and directory: leases, fences, catalog and logs come back.
        await run.SnapshotAsync();
        var down = DateTimeOffset.UtcNow;
        await run.Redis.RestartWithDataAsync();
        var outage = DateTimeOffset.UtcNow - down;
        run.Note($"{run.Redis.Kind} restarted with its data after {outage.TotalSeconds:0.00} s down");
        await run.WaitBalancedAsync(2, Settle);
        await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
        await run.CheckAsync(from, ChaosRun.GapBound + outage);
    }

    [Fact]
    public async Task Redis_restarted_empty_the_fleet_recovers_with_increasing_tokens()
    {
        await using var run = await ChaosRun.StartAsync(output);
        var from = await TwoPollingInstancesAsync(run);
        await run.SnapshotAsync();
        var before = await run.CheckAsync(from, ChaosRun.GapBound);

        // Everything gone. Fences restart from Redis time, so new tokens still exceed every old one (the
        // checker's stale-append figure spans both lives of the log); the catalog comes back the way an
        // operator brings it back, by applying it again.
        var down = DateTimeOffset.UtcNow;
        await run.Redis.RestartEmptyAsync();
        Assert.Empty(await run.Catalog.ListAsync());
        await run.LoadCatalogAsync();
        var outage = DateTimeOffset.UtcNow - down;
        run.Note($"{run.Redis.Kind} restarted empty; catalog applied again after {outage.TotalSeconds:0.00} s");
        await run.WaitBalancedAsync(2, Settle);
        await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
        var empty = await run.CheckAsync(from, ChaosRun.GapBound + outage);
        Assert.True(empty.Records > before.Records);
    }

    [Fact]
    public async Task One_instance_cut_off_from_redis_stops_polling_its_sessions_move_and_it_rejoins_when_healed()
    {
        await using var run = await ChaosRun.StartAsync(output);
        await using var proxy = new TcpProxy(run.Redis.Port);
        var cut = run.StartChild(1, proxy.ConnectionString);
        run.StartChild(1);
        run.StartChild(1);
        await run.WaitBalancedAsync(3, Settle);
        var from = DateTimeOffset.UtcNow;
        await run.WaitAllPolledSinceAsync(from, Settle);
        var cutId = cut.Instances.Single();

        // Blackhole: its renewals hang, it must stop polling at its local deadline, the others take over at expiry.
        var mark = cut.LineCount;
        proxy.Blackhole();
        var partitioned = DateTimeOffset.UtcNow;
        run.Note($"blackhole between {cut.Name} ({cutId}) and Redis");
        await run.WaitBalancedAsync(2, Settle);
        await run.WaitAllPolledSinceAsync(partitioned, Settle);
        await run.UntilAsync(() => Task.FromResult(cut.Lines.Skip(mark).Any(l => l.Text.Contains("Lease lost: instance=" + cutId, StringComparison.Ordinal))), Settle, "the cut-off instance gives its leases up");

        // Heal: the replies that waited arrive late and must not revive anything; it rejoins and gets its share.
        proxy.Heal();
        run.Note("healed");
        await run.WaitBalancedAsync(3, Settle);
        await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);

        // A link slower than the cycle's timeout (every chunk held 1.5 s each way, timeout 1 s): the instance can
        // no longer hold anything it hears about in time, so its late calls must not hold anything either. It drops
        // out of the fleet and its sessions are polled by the others until the link is healed.
        proxy.Delay(TimeSpan.FromMilliseconds(1500));
        var slowed = DateTimeOffset.UtcNow;
        run.Note("1.5 s delay each way on every chunk");
        await run.WaitBalancedAsync(2, SlowLinkBound);
        await run.WaitAllPolledSinceAsync(slowed + ChaosRun.LeaseTtl, SlowLinkBound);
        proxy.Heal();
        run.Note("healed");
        await run.WaitBalancedAsync(3, Settle);
        await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
        await run.CheckAsync(from);
    }
}
