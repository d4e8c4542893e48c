using System.Collections.Concurrent;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;
using StackExchange.Redis.Profiling;

namespace PollLease.Tests.Coordination;

public abstract class LeaseManagerTests(RedisFixture fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private readonly string _prefix = RedisFixture.NewPrefix();

    private string LeaseKey(string session) => $"{{{_prefix}}}:lease:{session}";

    private string FenceKey(string session) => $"{{{_prefix}}}:fence:{session}";

    [Fact]
    public async Task One_instance_acquires_every_session()
    {
        var sessions = LeaseTestHost.Sessions(20);
        await using var redis = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(sessions));

        var result = await a.RunCycleAsync();

        Assert.True(result.Succeeded);
        Assert.Equal(20, result.Acquired);
        Assert.All(sessions, s => Assert.True(a.IsOwned(s)));
        Assert.Equal(sessions, a.OwnedSessions().Select(l => l.SessionId));
        var value = await fixture.Redis.GetDatabase().StringGetAsync(LeaseKey("session-000003"));
        Assert.Equal($"node-a|{a.OwnedSessions()[3].Token}", value.ToString());
        Assert.Equal(["node-a"], a.LiveNodes);
        // The key's own expiry is only the safety net for a fleet that died; validity is the heartbeat's.
        var pttl = await fixture.Redis.GetDatabase().ExecuteAsync("PTTL", LeaseKey("session-000003"));
        Assert.InRange((long)pttl, 1500, (long)LeaseStore.KeyTtl(a.Options).TotalMilliseconds);
    }

    [Fact]
    public async Task Second_instance_gets_nothing_while_the_first_holds_and_takes_over_after_release()
    {
        var sessions = LeaseTestHost.Sessions(5);
        await using var ra = await fixture.ConnectAsync();
        await using var rb = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(ra, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(sessions));
        await using var b = LeaseTestHost.Create(rb, LeaseTestHost.FastOptions(_prefix, "node-b"), StaticSessionSource.FromIds(sessions));

        await a.RunCycleAsync();
        var second = await b.RunCycleAsync();

        Assert.Equal(0, second.Acquired);
        Assert.Empty(b.OwnedSessions());
        Assert.Equal(["node-a", "node-b"], b.LiveNodes.Order(StringComparer.Ordinal));
        var attempt = await b.TryAcquireAsync("session-000002");
        Assert.False(attempt.Acquired);
        Assert.Equal("node-a", attempt.Holder);

        Assert.True(await a.ReleaseAsync("session-000002"));
        Assert.False(a.IsOwned("session-000002"));
        Assert.Equal(LeaseState.None, a.GetState("session-000002"));
        var takeover = await b.TryAcquireAsync("session-000002");
        Assert.True(takeover.Acquired);
        Assert.True(b.IsOwned("session-000002"));
    }

    [Fact]
    public async Task A_non_owner_can_neither_renew_nor_release()
    {
        await using var ra = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(ra, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(["s1"]));
        await a.RunCycleAsync();
        var token = a.OwnedSessions()[0].Token;
        var keys = new RedisKeys(_prefix);
        var intruder = new LeaseStore(fixture.Redis, keys, "node-b", LeaseTestHost.FastOptions(_prefix, "node-b"));

        // Same token, different owner; and the right owner name with a wrong token.
        // (A refresh checks the value when it records a poll start; a plain one only moves the key's expiry on.)
        var response = await intruder.RunAsync(new CycleRequest(HeartbeatMode.None, [new("s1", token, 123)], [], [new("s1", token)]));
        var impostor = new LeaseStore(fixture.Redis, keys, "node-a", LeaseTestHost.FastOptions(_prefix, "node-a"));
        var stale = await impostor.RunAsync(new CycleRequest(HeartbeatMode.None, [new("s1", token - 1, 123)], [], [new("s1", token - 1)]));
        var taker = await intruder.RunAsync(new CycleRequest(HeartbeatMode.Register, [], ["s1"], []));

        Assert.Equal($"node-a|{token}", response.RefreshFailed[0]);
        Assert.False(response.Released[0]);
        Assert.NotNull(stale.RefreshFailed[0]);
        Assert.False(stale.Released[0]);
        // node-a's heartbeat is alive, so its lease cannot be taken either.
        Assert.Equal(0, taker.Acquire[0].Token);
        Assert.Equal($"node-a|{token}", taker.Acquire[0].Holder);
        Assert.Equal($"node-a|{token}", (await fixture.Redis.GetDatabase().StringGetAsync(LeaseKey("s1"))).ToString());
        Assert.False(await fixture.Redis.GetDatabase().KeyExistsAsync($"{{{_prefix}}}:polled:s1"));
        Assert.False(await a.ReleaseAsync("not-held"));
    }

    [Fact]
    public async Task Tokens_strictly_increase_across_owners()
    {
        await using var ra = await fixture.ConnectAsync();
        await using var rb = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(ra, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds([]));
        await using var b = LeaseTestHost.Create(rb, LeaseTestHost.FastOptions(_prefix, "node-b"), StaticSessionSource.FromIds([]));

        var tokens = new List<long>();
        for (var i = 0; i < 10; i++)
        {
            var owner = i % 2 == 0 ? a : b;
            var result = await owner.TryAcquireAsync("s1");
            Assert.True(result.Acquired);
            tokens.Add(result.Token);
            Assert.True(await owner.ReleaseAsync("s1"));
        }

        Assert.Equal(tokens.Order(), tokens);
        Assert.Equal(tokens.Count, tokens.Distinct().Count());
        Assert.Equal(tokens[^1].ToString(System.Globalization.CultureInfo.InvariantCulture), (await fixture.Redis.GetDatabase().StringGetAsync(FenceKey("s1"))).ToString());
    }

    [Fact]
    public async Task Tokens_keep_increasing_after_redis_restarts_with_no_data()
    {
        await using var server = await fixture.StartDedicatedAsync();
        await using var redis = await fixture.ConnectAsync(server.ConnectionString);
        await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds([]));
        var first = await a.TryAcquireAsync("s1");
        Assert.True(await a.ReleaseAsync("s1"));

        await server.RestartEmptyAsync();
        await Eventually.TrueAsync(() => redis.IsConnected, Deadline, "client reconnects after the restart");
        Assert.False(await redis.GetDatabase().KeyExistsAsync(FenceKey("s1")));
        // Redis lost its data: nothing is acquired until the data-loss quarantine (one lease TTL) is over.
        var second = await a.TryAcquireAsync("s1");
        Assert.False(second.Acquired);
        await Eventually.TrueAsync(async () => (second = await a.TryAcquireAsync("s1")).Acquired, Deadline, "s1 acquired once the quarantine is over");

        Assert.True(first.Acquired && second.Acquired);
        Assert.True(second.Token > first.Token, $"token after restart {second.Token} must exceed {first.Token}");
    }

    [Fact]
    public async Task Heartbeat_renew_and_acquire_cost_one_round_trip_whatever_the_number_of_leases()
    {
        var first = new List<int>();
        var later = new List<int>();
        foreach (var n in new[] { 1, 100, 1000 })
        {
            var prefix = RedisFixture.NewPrefix();
            await using var redis = await fixture.ConnectAsync();
            await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(prefix, "node-a"), StaticSessionSource.FromIds(LeaseTestHost.Sessions(n)));
            var registerAndAcquire = new ProfilingSession();
            redis.RegisterProfiler(() => registerAndAcquire);
            var acquire = await a.RunCycleAsync();
            first.Add(registerAndAcquire.FinishProfiling().Count());

            // A long acquire list is split over cycles (at most LeaseTable.MaxAcquirePerCycle a script).
            var taken = acquire.Acquired;
            while (taken < n)
            {
                taken += (await a.RunCycleAsync()).Acquired;
            }
            var steady = new ProfilingSession();
            redis.RegisterProfiler(() => steady);
            var renew = await a.RunCycleAsync();
            later.Add(steady.FinishProfiling().Count());

            Assert.Equal(Math.Min(n, LeaseTable.MaxAcquirePerCycle), acquire.Acquired);
            Assert.Equal(n, taken);
            Assert.Equal(n, renew.Renewed);
        }

        // The very first cycle registers in a round trip of its own (to plan with the fleet's view); every cycle
        // after that is one round trip whatever the number of leases.
        Assert.All(first, c => Assert.Equal(2, c));
        Assert.All(later, c => Assert.Equal(1, c));
    }

    [Fact]
    public async Task Stop_releases_a_thousand_leases_and_deregisters_in_one_round_trip()
    {
        var sessions = LeaseTestHost.Sessions(1000);
        await using var redis = await fixture.ConnectAsync();
        var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(sessions));
        // Cycles driven by hand, not by the background loop: a loop cycle racing the profiler would be counted too.
        for (var cycle = 0; cycle < 20 && a.OwnedSessions().Count < 1000; cycle++)
        {
            await a.RunCycleAsync();
        }
        Assert.Equal(1000, a.OwnedSessions().Count);
        var released = new ConcurrentBag<LeaseEvent>();
        a.LeaseChanged += (_, e) => { if (e.Kind == LeaseEventKind.Released) { released.Add(e); } };
        var session = new ProfilingSession();
        redis.RegisterProfiler(() => session);

        await a.StopAsync();

        var commands = session.FinishProfiling().Where(c => !c.Command.Contains("SUBSCRIBE", StringComparison.Ordinal)).ToList();
        Assert.Single(commands);
        Assert.Empty(a.OwnedSessions());
        Assert.Equal(1000, released.Count);
        Assert.All(released, e => Assert.Equal(LeaseReasons.Shutdown, e.Reason));
        var db = fixture.Redis.GetDatabase();
        Assert.False(await db.KeyExistsAsync(LeaseKey("session-000500")));
        Assert.Equal(0, await db.SortedSetLengthAsync($"{{{_prefix}}}:nodes"));
        Assert.False(await db.KeyExistsAsync($"{{{_prefix}}}:node:node-a"));
        await a.DisposeAsync();
    }

    [Fact]
    public async Task Registry_lists_live_nodes_without_scan_and_keeps_a_node_key_for_humans()
    {
        await using var ra = await fixture.ConnectAsync();
        await using var rb = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(ra, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds([]));
        await using var b = LeaseTestHost.Create(rb, LeaseTestHost.FastOptions(_prefix, "node-b"), StaticSessionSource.FromIds([]));
        await a.RunCycleAsync();
        await b.RunCycleAsync();
        var db = fixture.Redis.GetDatabase();

        Assert.Equal(["node-a", "node-b"], b.LiveNodes.Order(StringComparer.Ordinal));
        var meta = (await db.StringGetAsync($"{{{_prefix}}}:node:node-a")).ToString();
        Assert.Contains("\"id\":\"node-a\"", meta, StringComparison.Ordinal);
        var ttl = await db.KeyTimeToLiveAsync($"{{{_prefix}}}:node:node-a");
        Assert.NotNull(ttl);

        // A node that stops heartbeating drops out of the live view once its heartbeat TTL passes.
        var bCycles = 0;
        await Eventually.TrueAsync(async () => { await b.RunCycleAsync(); bCycles++; return !b.LiveNodes.Contains("node-a"); }, Deadline, "node-a expires from the registry");
        Assert.Equal(["node-b"], b.LiveNodes);
        Assert.True(bCycles > 1);
    }

    [Fact]
    public async Task An_instance_that_vanishes_loses_its_sessions_to_another_after_the_ttl_and_never_overlaps()
    {
        var sessions = LeaseTestHost.Sessions(10);
        var ra = await fixture.ConnectAsync();
        await using var rb = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(ra, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(sessions));
        await using var b = LeaseTestHost.Create(rb, LeaseTestHost.FastOptions(_prefix, "node-b"), StaticSessionSource.FromIds(sessions));
        var events = new ConcurrentQueue<LeaseEvent>();
        a.LeaseChanged += (_, e) => events.Enqueue(e);
        b.LeaseChanged += (_, e) => events.Enqueue(e);
        await a.StartAsync();
        await b.StartAsync();
        await Eventually.TrueAsync(() => a.OwnedSessions().Count == 5 && b.OwnedSessions().Count == 5, Deadline, "5 sessions each");
        var crashed = a.OwnedSessions().Select(l => l.SessionId).ToList();

        // The process "dies": its connection goes away without a release.
        await ra.CloseAsync(allowCommandsToComplete: false);

        await Eventually.TrueAsync(() => b.OwnedSessions().Count == 10, Deadline, "b takes every session over");
        Assert.Empty(a.OwnedSessions());
        foreach (var s in crashed)
        {
            var lost = events.Single(e => e.InstanceId == "node-a" && e.SessionId == s && e.Kind == LeaseEventKind.Lost);
            var taken = events.Last(e => e.InstanceId == "node-b" && e.SessionId == s && e.Kind == LeaseEventKind.Acquired);
            Assert.Equal(LeaseReasons.Deadline, lost.Reason);
            Assert.True(lost.Timestamp <= taken.Timestamp, $"{s}: a gave it up at {lost.Timestamp:O}, b took it at {taken.Timestamp:O}");
            Assert.True(taken.Token > lost.Token);
        }
        await a.StopAsync();
        ra.Dispose();
    }

    [Fact]
    public async Task A_graceful_stop_hands_sessions_over_at_once_through_the_events_channel()
    {
        var sessions = LeaseTestHost.Sessions(10);
        var slow = LeaseTestHost.FastOptions(_prefix, "node-b");
        slow.RenewInterval = TimeSpan.FromSeconds(10);
        slow.HeartbeatInterval = TimeSpan.FromSeconds(10);
        slow.HeartbeatTtl = TimeSpan.FromSeconds(30);
        slow.LeaseTtl = TimeSpan.FromSeconds(30);
        slow.RetryInterval = TimeSpan.FromSeconds(2);
        await using var ra = await fixture.ConnectAsync();
        await using var rb = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(ra, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(sessions));
        await using var b = LeaseTestHost.Create(rb, slow, StaticSessionSource.FromIds(sessions));
        await a.StartAsync();
        await b.StartAsync();
        await Eventually.TrueAsync(() => a.OwnedSessions().Count == 5 && b.OwnedSessions().Count == 5, TimeSpan.FromSeconds(5), "rebalanced on the joined and released events");

        await a.StopAsync();

        // b's next cycle is 10 s away; the released event must wake it well before that.
        await Eventually.TrueAsync(() => b.OwnedSessions().Count == 10, TimeSpan.FromSeconds(5), "b takes over on the released event");
    }

    [Fact]
    public async Task Strict_check_asks_redis()
    {
        await using var redis = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(["s1", "s2"]));
        await a.RunCycleAsync();

        Assert.True(await a.IsOwnedStrictAsync("s1"));
        await fixture.Redis.GetDatabase().StringSetAsync(LeaseKey("s1"), "node-z|99999999999999");
        Assert.True(a.IsOwned("s1")); // a value changed by hand is not seen without asking Redis
        Assert.False(await a.IsOwnedStrictAsync("s1"));
        Assert.False(a.IsOwned("s1")); // the strict check drops it at once
        Assert.False(await a.IsOwnedStrictAsync("unknown"));

        var lost = new List<LeaseEvent>();
        a.LeaseChanged += (_, e) => { if (e.Kind == LeaseEventKind.Lost) { lost.Add(e); } };
        var before = a.OwnedSessions().Single(l => l.SessionId == "s2").Token;
        await a.RunCycleAsync();
        Assert.Equal(LeaseReasons.Taken, Assert.Single(lost).Reason);
        // "node-z" has no heartbeat, so its value holds nothing: the next cycle takes s1 again, under a new token.
        Assert.True(a.TryGetLease("s1", out var again) && again.Token > before);
    }

    [Fact]
    public async Task A_lease_value_in_an_unexpected_format_is_treated_as_held_and_does_not_break_the_cycle()
    {
        await fixture.Redis.GetDatabase().StringSetAsync(LeaseKey("s1"), "garbage-without-token", TimeSpan.FromSeconds(5));
        await using var redis = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(["s1", "s2"]));

        var result = await a.RunCycleAsync();
        var attempt = await a.TryAcquireAsync("s1");

        Assert.True(result.Succeeded);
        Assert.True(a.IsOwned("s2"));
        Assert.False(a.IsOwned("s1"));
        Assert.Equal("garbage-without-token", attempt.Holder);
    }

    [Fact]
    public async Task A_throwing_event_handler_does_not_stop_the_cycle()
    {
        await using var redis = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(["s1"]));
        a.LeaseChanged += (_, _) => throw new InvalidOperationException("subscriber bug");

        var result = await a.RunCycleAsync();

        Assert.True(result.Succeeded);
        Assert.True(a.IsOwned("s1"));
    }

    [Fact]
    public async Task Redis_down_makes_leases_uncertain_then_lost_at_the_deadline_and_the_loop_recovers_when_it_returns()
    {
        var sessions = LeaseTestHost.Sessions(5);
        await using var server = await fixture.StartDedicatedAsync();
        await using var redis = await fixture.ConnectAsync(server.ConnectionString);
        await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(sessions));
        var events = new ConcurrentQueue<LeaseEvent>();
        a.LeaseChanged += (_, e) => events.Enqueue(e);
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.OwnedSessions().Count == 5, Deadline, "owns all");
        var before = a.OwnedSessions().ToDictionary(l => l.SessionId, l => l.Token);

        await server.StopAsync();
        await Eventually.TrueAsync(() => sessions.All(s => a.GetState(s) != LeaseState.Owned), Deadline, "leases stop being Owned");
        Assert.All(sessions, s => Assert.False(a.IsOwned(s)));
        await Eventually.TrueAsync(() => events.Count(e => e.Kind == LeaseEventKind.Lost) == 5, Deadline, "Lost reported for every lease");
        Assert.Empty(a.OwnedSessions());
        // Uncertain first (renewing failed: no new polls), Lost at the deadline. The states are read from the event
        // stream, not sampled, because a loaded machine can pass both between two samples.
        var order = events.ToList();
        Assert.All(sessions, s =>
        {
            var uncertain = order.FindIndex(e => e.SessionId == s && e.Kind == LeaseEventKind.Uncertain);
            var lost = order.FindIndex(e => e.SessionId == s && e.Kind == LeaseEventKind.Lost && e.Reason == LeaseReasons.Deadline);
            Assert.InRange(uncertain, 0, lost - 1);
        });

        await server.StartAsync();
        await Eventually.TrueAsync(() => a.OwnedSessions().Count == 5, Deadline, "owns all again after Redis returns");
        Assert.All(a.OwnedSessions(), l => Assert.True(l.Token > before[l.SessionId]));
    }
}

public sealed class LeaseManagerTests_RedisServer(RedisServerFixture f) : LeaseManagerTests(f), IClassFixture<RedisServerFixture>;

public sealed class LeaseManagerTests_Garnet(GarnetFixture f) : LeaseManagerTests(f), IClassFixture<GarnetFixture>;
