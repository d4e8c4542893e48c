using PollLease.ChaosTests.Harness;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace PollLease.ChaosTests;

/// <summary>
/// Redis loses the fleet's data under a running fleet: FLUSHALL, a restart with no persistence, a failover to a
/// replica that missed the last writes (master and replica, and inside a Redis Cluster). No session may get a
/// second poller, by the instances' own poll logs as well as by the fenced message log.
/// </summary>
public sealed class DataLossTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(90);

    /// <summary>
    /// After a loss nothing is acquired for one lease TTL (an old owner may still poll until then), then the
    /// sessions are acquired and polled: a session may wait the quarantine on top of the usual takeover bound.
    /// </summary>
    private static readonly TimeSpan LossGapBound = ChaosRun.GapBound + ChaosRun.LeaseTtl;

    /// <summary>
    /// How long a replica is cut off before its master dies: longer than the lease TTL, so every lease it holds has
    /// expired by the time it is promoted, while the instances still count theirs as valid.
    /// </summary>
    private static readonly TimeSpan ReplicaBehind = ChaosRun.LeaseTtl + TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Redis_flushed_and_restarted_empty_under_a_running_fleet_no_session_gets_a_second_poller()
    {
        await using var run = await ChaosRun.StartAsync(output);
        run.StartChild(1);
        run.StartChild(1);
        run.StartChild(1);
        await run.WaitBalancedAsync(3, Settle);
        var from = DateTimeOffset.UtcNow;
        await run.WaitAllPolledSinceAsync(from, Settle);

        // Each loss races the old owners' next renew against the others' next acquire; several losses make a
        // second poller all but certain without a guard. The catalog is put back as it was (same keys, same
        // version) in the same step, as for a fleet whose sessions do not come from Redis: a catalog that
        // vanished would make every owner drop its sessions and hide the race.
        var restore = await CatalogRestoreAsync(run);
        var longestRecovery = TimeSpan.Zero;
        for (var i = 0; i < 4; i++)
        {
            await run.SnapshotAsync();
            var lost = DateTimeOffset.UtcNow;
            if (i % 2 == 0)
            {
                await RedisAdmin.ExecuteAsync(run.Redis.Port, "EVAL", restore);
                run.Note("FLUSHALL (catalog restored in the same script)");
            }
            else
            {
                await run.Redis.RestartEmptyAsync();
                await RedisAdmin.ExecuteAsync(run.Redis.Port, "EVAL", restore);
                run.Note($"{run.Redis.Kind} restarted empty, catalog restored {(DateTimeOffset.UtcNow - lost).TotalSeconds:0.00} s after the kill");
            }
            await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
            var recovery = DateTimeOffset.UtcNow - lost;
            longestRecovery = recovery > longestRecovery ? recovery : longestRecovery;
            run.Note($"every session polled again {recovery.TotalSeconds:0.00} s after the loss");
            await run.WaitBalancedAsync(3, Settle);
        }
        await CheckAsync(run, from, LossGapBound + TimeSpan.FromSeconds(1));
        run.Note($"longest recovery {longestRecovery.TotalSeconds:0.00} s (lease TTL {ChaosRun.LeaseTtl.TotalSeconds:0} s)");
    }

    [RedisServerFact("replication: a replica started with --replicaof and promoted with REPLICAOF NO ONE")]
    public async Task Master_killed_and_a_replica_that_missed_writes_promoted_the_fleet_follows_without_a_second_poller()
    {
        await using var topology = await ReplicatedRedis.StartAsync();
        await using var run = await ChaosRun.StartOnAsync(output, topology.ConnectionString, "repl" + Guid.NewGuid().ToString("N")[..8]);
        run.Note($"master {topology.Master.Port}, replica {topology.Replica.Port}");
        run.StartChild(1);
        run.StartChild(1);
        run.StartChild(1);
        await run.WaitBalancedAsync(3, Settle);
        var from = DateTimeOffset.UtcNow;
        await run.WaitAllPolledSinceAsync(from, Settle);
        await run.SnapshotAsync();

        // The replica misses the last seconds of renewals: promoted, it holds only expired leases, while their
        // owners still count them as valid.
        await ReplicaLag.CutOffAsync(topology.Replica, run.Admin.GetDatabase(), "{" + run.Prefix + "}:ballast");
        run.Note($"replica cut off for {ReplicaBehind.TotalSeconds:0.0} s");
        await Task.Delay(ReplicaBehind);
        await run.SnapshotAsync();
        var failed = DateTimeOffset.UtcNow;
        await topology.Master.KillAsync();
        topology.Replica.Resume();
        await topology.PromoteReplicaAsync();
        run.Note("master killed, replica promoted (REPLICAOF NO ONE)");
        await run.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
        run.Note($"every session polled again {(DateTimeOffset.UtcNow - failed).TotalSeconds:0.00} s after the failover");
        await run.WaitBalancedAsync(3, Settle);
        await CheckAsync(run, from, LossGapBound + ReplicaBehind + TimeSpan.FromSeconds(2));
    }

    [RedisServerFact("Redis Cluster: six redis-server nodes joined by redis-cli --cluster create")]
    public async Task Redis_cluster_two_fleets_on_their_own_shards_work_unchanged_and_survive_a_master_failover()
    {
        await using var cluster = await RedisClusterChildren.StartAsync();
        // Two fleets whose hash tags land on different masters: each fleet's keys live in one slot of its own shard.
        var a = "ca" + Guid.NewGuid().ToString("N")[..8];
        string b;
        do
        {
            b = "cb" + Guid.NewGuid().ToString("N")[..8];
        }
        while ((await cluster.MasterOfAsync(b)).Id == (await cluster.MasterOfAsync(a)).Id);
        var shardA = await cluster.MasterOfAsync(a);
        var shardB = await cluster.MasterOfAsync(b);
        Assert.NotEqual(shardA.Id, shardB.Id);

        // A quick janitor, so its sweep (a SCAN for orphaned lease and fence keys) runs several times in the test.
        var janitor = new Dictionary<string, string> { ["PollLease__Janitor__Interval"] = "00:00:02" };
        await using var runA = await ChaosRun.StartOnAsync(output, cluster.ConnectionString, a);
        await using var runB = await ChaosRun.StartOnAsync(output, cluster.ConnectionString, b, sessions: 10);
        runA.Note($"fleet {a} on master {shardA.Port}, fleet {b} on master {shardB.Port}");

        // Events: a subscriber on the cluster sees every instance's join, published by the cycle script on the shard.
        var joined = new System.Collections.Concurrent.ConcurrentBag<string>();
        var events = await runA.Admin.GetSubscriber().SubscribeAsync(RedisChannel.Literal("{" + a + "}:events"));
        events.OnMessage(m => joined.Add(m.Message.ToString()));

        runA.StartChild(1, environment: janitor);
        runA.StartChild(1, environment: janitor);
        runB.StartChild(1, environment: janitor);
        runB.StartChild(1, environment: janitor);
        await runA.WaitBalancedAsync(2, Settle);
        await runB.WaitBalancedAsync(2, Settle);
        var from = DateTimeOffset.UtcNow;
        await runA.WaitAllPolledSinceAsync(from, Settle);
        await runB.WaitAllPolledSinceAsync(from, Settle);
        var instancesA = runA.Children.SelectMany(c => c.Instances).ToArray();
        await runA.UntilAsync(() => Task.FromResult(instancesA.All(i => joined.Contains("joined|" + i))), Settle, "a join event from every instance of fleet A");

        // The janitor's sweep finds keys of sessions no longer in the catalog on the shard that holds the slot.
        var db = runA.Admin.GetDatabase();
        await db.StringSetAsync("{" + a + "}:lease:gone-1", "nobody|1");
        await db.StringSetAsync("{" + a + "}:fence:gone-1", "1");
        await runA.UntilAsync(async () => !await db.KeyExistsAsync("{" + a + "}:fence:gone-1") && !await db.KeyExistsAsync("{" + a + "}:lease:gone-1"),
            Settle, "the janitor removes fleet A's orphaned lease and fence keys");

        // Fleet A's master dies while its replica is behind; the cluster promotes the replica. Fleet B is untouched.
        await runA.SnapshotAsync();
        // Looked up again: on a loaded machine the cluster may already have swapped a master and its replica.
        shardA = await cluster.MasterOfAsync(a);
        var replica = await cluster.ReplicaOfAsync(shardA);
        await ReplicaLag.CutOffAsync(cluster.Child(replica), db, "{" + a + "}:ballast");
        runA.Note($"replica {replica.Port} cut off for {ReplicaBehind.TotalSeconds:0.0} s");
        await Task.Delay(ReplicaBehind);
        await runA.SnapshotAsync();
        var failed = DateTimeOffset.UtcNow;
        await cluster.Child(shardA).KillAsync();
        cluster.Child(replica).Resume();
        var promoted = await cluster.WaitPromotedAsync(a, shardA, Settle);
        runA.Note($"master {shardA.Port} killed; {promoted.Port} took over after {(DateTimeOffset.UtcNow - failed).TotalSeconds:0.00} s");
        var failover = DateTimeOffset.UtcNow - failed;
        await runA.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
        runA.Note($"every session of fleet A polled again {(DateTimeOffset.UtcNow - failed).TotalSeconds:0.00} s after the kill");
        await runA.WaitBalancedAsync(2, Settle);
        await runB.WaitAllPolledSinceAsync(DateTimeOffset.UtcNow, Settle);
        await db.StringSetAsync("{" + a + "}:lease:gone-2", "nobody|1");
        await runA.UntilAsync(async () => !await db.KeyExistsAsync("{" + a + "}:lease:gone-2"), Settle, "the janitor sweeps the promoted master");

        await CheckAsync(runA, from, LossGapBound + ReplicaBehind + failover + TimeSpan.FromSeconds(2));
        await CheckAsync(runB, from, ChaosRun.GapBound);
    }

    /// <summary>
    /// Empties the server and writes the catalog back, atomically: KEYS the session set, the version counter, then
    /// each session's hash; ARGV the version, then per session hash its field count and its fields and values.
    /// </summary>
    private const string FlushAndRestore = """
        redis.call('FLUSHALL')
        redis.call('SET', KEYS[2], ARGV[1])
        local a = 2
        for i = 3, #KEYS do
          local n = tonumber(ARGV[a])
          for j = 1, n do
            redis.call('HSET', KEYS[i], ARGV[a + 2 * j - 1], ARGV[a + 2 * j])
          end
          a = a + 2 * n + 1
          redis.call('SADD', KEYS[1], string.sub(KEYS[i], #KEYS[1] + 1))
        end
        return #KEYS
        """;

    /// <summary>The EVAL arguments of <see cref="FlushAndRestore"/> for the run's catalog as it is now.</summary>
    private static async Task<object[]> CatalogRestoreAsync(ChaosRun run)
    {
        var db = run.Admin.GetDatabase();
        var root = "{" + run.Prefix + "}";
        var keys = new List<object> { root + ":sessions", root + ":sessions:version" };
        var args = new List<object> { (string?)await db.StringGetAsync(root + ":sessions:version") ?? "0" };
        foreach (var session in run.Sessions)
        {
            var fields = await db.HashGetAllAsync(root + ":session:" + session);
            keys.Add(root + ":session:" + session);
            args.Add(fields.Length);
            args.AddRange(fields.SelectMany(f => new object[] { (string)f.Name!, (string)f.Value! }));
        }
        return [FlushAndRestore, keys.Count, .. keys, .. args];
    }

    /// <summary>The chaos checker's figures (fenced log and poll logs) plus duplicate owners by the poll logs alone.</summary>
    private static async Task CheckAsync(ChaosRun run, DateTimeOffset from, TimeSpan gapBound)
    {
        var polls = PollLogChecker.Check(run.Children);
        run.Note(polls.ToString());
        await run.CheckAsync(from, gapBound);
        Assert.True(polls.DuplicateOwners == 0, polls.ToString());
    }
}
