using System.Globalization;
using PollLease.ChaosTests.Harness;
using Xunit.Abstractions;

namespace PollLease.ChaosTests;

/// <summary>
/// Every fault, in a random order from a printed seed. Short by default (a few rounds); POLL_CHAOS_SOAK=minutes
/// keeps going for that long and prints the same figures. POLL_CHAOS_SEED=n replays a sequence of faults.
/// </summary>
public sealed class RandomizedChaosTests(ITestOutputHelper output) : IClassFixture<ChaosServerFixture>
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(120);

    private enum Fault
    {
        Kill9,
        Sigstop,
        RedisRestartWithData,
        RedisRestartEmpty,
        Blackhole,
        SlowLink,
    }

    private sealed record Member(PollCtlChild Child, int Instances, bool ViaProxy);

    [Fact]
    public async Task Random_faults_from_a_printed_seed_keep_every_guarantee()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("POLL_CHAOS_SEED"), CultureInfo.InvariantCulture, out var s) ? s : Random.Shared.Next();
        var soak = double.TryParse(Environment.GetEnvironmentVariable("POLL_CHAOS_SOAK"), CultureInfo.InvariantCulture, out var m) ? TimeSpan.FromMinutes(m) : TimeSpan.Zero;
        var rng = new Random(seed);

        await using var run = await ChaosRun.StartAsync(output);
        await using var proxy = new TcpProxy(run.Redis.Port);
        run.Note($"seed {seed} (POLL_CHAOS_SEED={seed} replays it); " + (soak > TimeSpan.Zero ? $"soak for {soak.TotalMinutes:0.#} min" : "short run"));
        var members = new List<Member>
        {
            new(run.StartChild(1, proxy.ConnectionString), 1, true),
            new(run.StartChild(2), 2, false),
            new(run.StartChild(1), 1, false),
        };
        var total = members.Sum(x => x.Instances);
        await run.WaitBalancedAsync(total, Settle);
        var from = DateTimeOffset.UtcNow;
        await run.WaitAllPolledSinceAsync(from, Settle);

        var started = DateTimeOffset.UtcNow;
        var longestOutage = TimeSpan.Zero;
        var restarts = 0;
        var counts = new Dictionary<Fault, int>();
        for (var round = 0; soak > TimeSpan.Zero ? DateTimeOffset.UtcNow - started < soak : round < 4; round++)
        {
            var fault = (Fault)rng.Next(Enum.GetValues<Fault>().Length);
            if (fault == Fault.RedisRestartWithData && !run.Redis.CanRestartWithData)
            {
                // The embedded Garnet server keeps nothing on disk: its restarts are all empty.
                fault = Fault.RedisRestartEmpty;
            }
            counts[fault] = counts.GetValueOrDefault(fault) + 1;
            var victimIndex = rng.Next(members.Count);
            var victim = members[victimIndex];
            run.Note($"round {round}: {fault}" + (fault is Fault.Kill9 or Fault.Sigstop ? $" {victim.Child.Name}" : ""));
            switch (fault)
            {
                case Fault.Kill9:
                    victim.Child.Kill9();
                    await run.WaitBalancedAsync(total - victim.Instances, Settle);
                    members[victimIndex] = new Member(run.StartChild(victim.Instances, victim.ViaProxy ? proxy.ConnectionString : null), victim.Instances, victim.ViaProxy);
                    break;
                case Fault.Sigstop:
                    victim.Child.Stop();
                    await run.WaitBalancedAsync(total - victim.Instances, Settle);
                    victim.Child.Continue();
                    break;
                case Fault.RedisRestartWithData:
                case Fault.RedisRestartEmpty:
                    await run.SnapshotAsync();
                    restarts++;
                    var down = DateTimeOffset.UtcNow;
                    if (fault == Fault.RedisRestartEmpty)
                    {
                        await run.Redis.RestartEmptyAsync();
                        await run.LoadCatalogAsync();
                    }
                    else
                    {
                        await run.Redis.RestartWithDataAsync();
                    }
                    var outage = DateTimeOffset.UtcNow - down;
                    longestOutage = outage > longestOutage ? outage : longestOutage;
                    break;
                case Fault.Blackhole:
                    proxy.Blackhole();
                    await run.WaitBalancedAsync(total - 1, Settle);
                    proxy.Heal();
                    break;
                case Fault.SlowLink:
                    proxy.Delay(TimeSpan.FromMilliseconds(1500));
                    await run.WaitBalancedAsync(total - 1, Settle);
                    proxy.Heal();
                    break;
            }
            await run.WaitBalancedAsync(total, Settle);
            await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
            await run.SnapshotAsync();
        }
        run.Note("faults: " + string.Join(", ", counts.Select(c => $"{c.Key} x{c.Value}")) + $"; seed {seed}");
        // A restarted Redis is a new epoch: nothing is acquired for one lease TTL after it (the data-loss quarantine), on
        // top of the outage itself.
        await run.CheckAsync(from, ChaosRun.GapBound + longestOutage + (restarts > 0 ? ChaosRun.LeaseTtl : TimeSpan.Zero));
    }
}
