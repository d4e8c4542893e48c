using PollLease.ChaosTests.Harness;
using PollLease.Messages;
using Xunit.Abstractions;

namespace PollLease.ChaosTests;

/// <summary>Instances that crash (kill -9) or freeze (SIGSTOP past the lease TTL) while they own sessions.</summary>
public sealed class ProcessFaultTests(ITestOutputHelper output) : IClassFixture<ChaosServerFixture>
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Kill_9_of_an_instance_moves_its_sessions_without_overlap_or_loss()
    {
        await using var run = await ChaosRun.StartAsync(output);
        var children = Enumerable.Range(0, 3).Select(_ => run.StartChild(1)).ToArray();
        await run.WaitBalancedAsync(3, Settle);
        var from = DateTimeOffset.UtcNow;
        await run.WaitAllPolledSinceAsync(from, Settle);

        var victim = children[Random.Shared.Next(children.Length)];
        var (leases, _) = await run.ReadLeasesAsync();
        var owned = leases.Values.Count(l => l?.Owner == victim.Instances.Single());
        victim.Kill9();
        var killed = DateTimeOffset.UtcNow;
        run.Note($"kill -9 {victim.Name} ({victim.Instances.Single()}, {owned} sessions)");

        await run.WaitBalancedAsync(2, Settle);
        await run.WaitAllPolledSinceAsync(killed, Settle);
        await run.CheckAsync(from);
    }

    [Fact]
    public async Task Sigstop_past_the_lease_ttl_leaves_a_zombie_that_never_writes_and_notices_its_loss()
    {
        await using var run = await ChaosRun.StartAsync(output);
        var children = Enumerable.Range(0, 3).Select(_ => run.StartChild(1)).ToArray();
        await run.WaitBalancedAsync(3, Settle);
        var from = DateTimeOffset.UtcNow;
        await run.WaitAllPolledSinceAsync(from, Settle);

        var zombie = children[Random.Shared.Next(children.Length)];
        var zombieId = zombie.Instances.Single();
        zombie.Stop();
        var stopped = DateTimeOffset.UtcNow;
        var (leases, _) = await run.ReadLeasesAsync();
        var held = leases.Where(l => l.Value?.Owner == zombieId).ToDictionary(l => l.Key, l => l.Value!.Value.Token);
        run.Note($"SIGSTOP {zombie.Name} ({zombieId}, {held.Count} sessions)");
        Assert.NotEmpty(held);

        // Frozen past its TTL: the others take its sessions over with newer tokens and poll them.
        await run.WaitBalancedAsync(2, Settle);
        await run.WaitAllPolledSinceAsync(stopped, Settle);
        foreach (var (session, token) in held)
        {
            // Whatever the zombie had in flight carries its old token: the log refuses it.
            await Assert.ThrowsAsync<StaleTokenException>(() => run.Log.AppendAsync(session, token, ["zombie write"]));
        }

        var mark = zombie.LineCount;
        zombie.Continue();
        var resumed = DateTimeOffset.UtcNow;
        run.Note($"SIGCONT {zombie.Name} after {(resumed - stopped).TotalSeconds:0.0} s");

        // It notices: every lease it held is reported lost, then it rejoins and gets its share back.
        await run.UntilAsync(() => Task.FromResult(held.Keys.All(s => zombie.Lines.Skip(mark).Any(l =>
            l.Text.Contains($"Lease lost: instance={zombieId} endpoint={s} ", StringComparison.Ordinal)))), Settle, "the zombie reports every lease lost");
        await run.WaitBalancedAsync(3, Settle);
        await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
        var figures = await run.CheckAsync(from, ChaosRun.GapBound);
        var lateStarts = ChaosChecker.ParseOutput(zombie.Lines.Skip(mark)).Starts.Count(s => held.TryGetValue(s.Session, out var t) && s.Token == t);
        run.Note($"zombie polls started under its old tokens after SIGCONT: {lateStarts}");
        Assert.Equal(0, lateStarts);
        Assert.Equal(0, figures.PollsOutsideLeaseWindow);
    }
}
