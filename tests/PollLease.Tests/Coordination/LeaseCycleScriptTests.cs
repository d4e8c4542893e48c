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
        var context = new CycleContext(keys, "late-node", 3000, 3000, 360_000, "{}");
        // Register and acquire, with a deadline long past (1 ms after the epoch).
        var (k, args) = CycleScript.Build(context, new CycleRequest(HeartbeatMode.Register, [], ["s1"], []), notAfterMs: 1);

        var e = await Assert.ThrowsAsync<RedisServerException>(() => fixture.Redis.GetDatabase().ScriptEvaluateAsync(CycleScript.Lua, k, args));

        Assert.Matches("^(ERR )?LATE [0-9]+$", e.Message); // Garnet prefixes script errors with ERR
        Assert.False(await fixture.Redis.GetDatabase().KeyExistsAsync(keys.Nodes));
        Assert.False(await fixture.Redis.GetDatabase().KeyExistsAsync(keys.Node("late-node")));
        Assert.False(await fixture.Redis.GetDatabase().KeyExistsAsync(keys.Lease("s1")));
    }

    [Fact]
    public async Task A_lease_or_fence_key_of_the_wrong_type_costs_only_its_own_session()
    {
        var keys = new RedisKeys(_prefix);
        var db = fixture.Redis.GetDatabase();
        await db.HashSetAsync(keys.Lease("hashed"), "x", "y");
        await db.SetAddAsync(keys.Fence("fenced"), "x");
        await LeaseTestHost.NewFleetAsync(fixture.Redis, _prefix);
        var store = new LeaseStore(fixture.Redis, keys, "node-a", LeaseTestHost.FastOptions(_prefix, "node-a"));

        var response = await store.RunAsync(new CycleRequest(HeartbeatMode.Register, [], ["hashed", "fenced", "fine"], []));

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

        // Refreshing and releasing around the bad key work too (a refresh that records a poll start reads the value).
        var renewed = await store.RunAsync(new CycleRequest(HeartbeatMode.Beat, [new("fine", response.Acquire[2].Token), new("hashed", 1, 123)], [], [new("fenced", response.Acquire[1].Token)]));
        Assert.Null(renewed.RefreshFailed[0]);
        Assert.NotNull(renewed.RefreshFailed[1]);
        if (redisServer)
        {
            Assert.Equal("wrong-type", renewed.RefreshFailed[1]);
        }
        Assert.True(renewed.Released[0]);
    }
}

public sealed class LeaseCycleScriptTests_RedisServer(RedisServerFixture f) : LeaseCycleScriptTests(f), IClassFixture<RedisServerFixture>;

public sealed class LeaseCycleScriptTests_Garnet(GarnetFixture f) : LeaseCycleScriptTests(f), IClassFixture<GarnetFixture>;

/// <summary>The Lua prelude names exactly the slots of the C# layout: one layout, two spellings kept in step.</summary>
public sealed class CycleScriptLayoutTests
{
    [Fact]
    public void The_lua_prelude_names_every_key_arg_and_reply_slot_as_the_enums_number_them()
    {
        var expected = new List<string> { "-- The names of the KEYS, ARGV and reply slots: a test checks them against CycleScript's Key, Arg and Out enums." };
        expected.AddRange(Enum.GetValues<CycleScript.Key>().Select(k => $"local KEY_{k} = KEYS[{(int)k}]"));
        expected.AddRange(Enum.GetValues<CycleScript.Arg>().Select(a => $"local ARG_{a} = ARGV[{(int)a}]"));
        expected.AddRange(Enum.GetValues<CycleScript.Out>().Select(o => $"local OUT_{o} = {(int)o}"));
        expected.Add($"local KEYS_FIXED, ARGS_FIXED = {Enum.GetValues<CycleScript.Key>().Length}, {Enum.GetValues<CycleScript.Arg>().Length}");
        expected.Add($"local REFRESH_KEYS, REFRESH_ARGS, ACQUIRE_KEYS, RELEASE_KEYS, RELEASE_ARGS = {CycleScript.RefreshKeys}, {CycleScript.RefreshArgs}, {CycleScript.AcquireKeys}, {CycleScript.ReleaseKeys}, {CycleScript.ReleaseArgs}");
        expected.Add($"local MODE_Beat, MODE_Register = {(int)HeartbeatMode.Beat}, {(int)HeartbeatMode.Register}");

        Assert.Equal(expected, CycleScript.Prelude.TrimEnd('\n').Split('\n'));
        // Every name the body uses is defined by the prelude.
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(CycleScript.Body, @"\b(KEY|ARG|OUT)_\w+"))
        {
            Assert.Contains($"local {m.Value} ", CycleScript.Prelude, StringComparison.Ordinal);
        }
    }
}
