using PollLease.Coordination;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Coordination;

/// <summary>
/// The cycle script's defences found by the chaos suite, on each backend: a call that arrives after its
/// deadline changes nothing, and a key of the wrong type costs only its own session.
/// </summary>
public abstract class LeaseCycleScriptTests(RedisFixture fixture)
{
    private readonly string _prefix = RedisFixture.NewPrefix();

    [Fact]
    public async Task A_call_that_reaches_redis_after_its_deadline_fails_with_late_and_writes_nothing()
    {
        var keys = new RedisKeys(_prefix);
        RedisKey[] k = [keys.Nodes, keys.Node("late-node"), keys.SessionsVersion];
        // Heartbeat mode 2 (register), no leases, and a deadline long past (1 ms after the epoch).
        RedisValue[] args = ["late-node", 3000, 3000, 2, "{}", 0, 0, 0, keys.Root + ":events", keys.LeasePrefix.Length, 1];

        var e = await Assert.ThrowsAsync<RedisServerException>(() => fixture.Redis.GetDatabase().ScriptEvaluateAsync(LeaseScripts.Cycle, k, args));

        Assert.Matches("^(ERR )?LATE [0-9]+$", e.Message); // Garnet prefixes script errors with ERR
        Assert.False(await fixture.Redis.GetDatabase().KeyExistsAsync(keys.Nodes));
        Assert.False(await fixture.Redis.GetDatabase().KeyExistsAsync(keys.Node("late-node")));
    }

    [Fact]
    public async Task A_lease_or_fence_key_of_the_wrong_type_costs_only_its_own_session()
    {
        var keys = new RedisKeys(_prefix);
        var db = fixture.Redis.GetDatabase();
        await db.HashSetAsync(keys.Lease("hashed"), "x", "y");
        await db.SetAddAsync(keys.Fence("fenced"), "x");
        var store = new LeaseStore(fixture.Redis, keys, "node-a", LeaseTestHost.FastOptions(_prefix, "node-a"));

        var response = await store.RunAsync(new CycleRequest(HeartbeatMode.Register, [], ["hashed", "fenced", "fine"], []), "{}");

        // Garnet keeps strings and objects apart (a hash and a string may share a name), so only redis-server sees
        // the lease key as the wrong type; on both, the cycle and the other sessions are unaffected.
        var redisServer = fixture.Kind != "garnet";
        if (redisServer)
        {
            Assert.Equal(0, response.Acquire[0].Token);
            Assert.Equal("wrong-type", response.Acquire[0].Holder);
        }
        Assert.True(response.Acquire[1].Token > 0); // the bad fence is replaced by a fresh one
        Assert.True(response.Acquire[2].Token > 0);
        Assert.Equal(["node-a"], response.LiveNodes);

        // Renewing and releasing around the bad key work too.
        var renewed = await store.RunAsync(new CycleRequest(HeartbeatMode.Beat, [("fine", response.Acquire[2].Token), ("hashed", 1)], [], [("fenced", response.Acquire[1].Token)]), "{}");
        Assert.True(renewed.Renew[0].Renewed);
        Assert.False(renewed.Renew[1].Renewed);
        if (redisServer)
        {
            Assert.Equal("wrong-type", renewed.Renew[1].Holder);
        }
        Assert.True(renewed.Released[0]);
    }
}

public sealed class LeaseCycleScriptTests_RedisServer(RedisServerFixture f) : LeaseCycleScriptTests(f), IClassFixture<RedisServerFixture>;

public sealed class LeaseCycleScriptTests_Garnet(GarnetFixture f) : LeaseCycleScriptTests(f), IClassFixture<GarnetFixture>;
