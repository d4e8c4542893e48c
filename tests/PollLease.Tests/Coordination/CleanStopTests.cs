using System.Globalization;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Tests.Hosting;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Coordination;

/// <summary>
/// After a graceful stop no key the instance held remains (no lease, no registry entry, no index, no leader key),
/// including what a cycle still in flight when the stop began acquired; and a stop that cannot reach Redis says
/// how many leases it left to expire instead of claiming they were released.
/// </summary>
public abstract class CleanStopTests(RedisFixture fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private readonly string _prefix = RedisFixture.NewPrefix();

    /// <summary>Every key that still names <paramref name="instance"/>: lease values, its registry entry, its index.</summary>
    private async Task<List<string>> KeysOfAsync(string instance)
    {
        var db = fixture.Redis.GetDatabase();
        var left = new List<string>();
        var server = fixture.Redis.GetServer(fixture.Redis.GetEndPoints()[0]);
        await foreach (var key in server.KeysAsync(pattern: $"{{{_prefix}}}:*"))
        {
            var type = await db.KeyTypeAsync(key);
            if (type == RedisType.String && (await db.StringGetAsync(key)).ToString() is { } value
                && (value.StartsWith(instance + "|", StringComparison.Ordinal) || key.ToString().EndsWith(":" + instance, StringComparison.Ordinal)))
            {
                left.Add(key!);
            }
            else if (type == RedisType.Set && key.ToString().EndsWith(":held:" + instance, StringComparison.Ordinal))
            {
                left.Add(key!);
            }
        }
        if (await db.SortedSetScoreAsync($"{{{_prefix}}}:nodes", instance) is not null)
        {
            left.Add("nodes entry");
        }
        return left;
    }

    [Fact]
    public async Task A_stop_during_an_acquiring_cycle_releases_what_that_cycle_acquired_with_or_without_budget()
    {
        for (var round = 0; round < 6; round++)
        {
            var instance = $"node-a{round}";
            var sessions = StaticSessionSource.FromIds([]);
            await using var redis = await fixture.ConnectAsync();
            await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, instance), sessions);
            Assert.True((await a.RunCycleAsync()).Succeeded); // registered, nothing to take yet

            // A cycle that acquires 50 new sessions goes out (the source and the planner answer synchronously, so
            // the request is issued before RunCycleAsync returns), and the stop begins at once: with its budget
            // (it waits for the cycle) or with none left (it does not wait, and cannot confirm anything).
            sessions.Set(LeaseTestHost.Records(Enumerable.Range(0, 50).Select(i => $"r{round}-{i:D3}")));
            var cycle = a.RunCycleAsync();
            using var budget = new CancellationTokenSource();
            if (round % 2 == 1)
            {
                await budget.CancelAsync();
            }
            var stopped = await a.StopAsync(budget.Token);
            await cycle;

            if (round % 2 == 0)
            {
                Assert.True(stopped.Deregistered);
                Assert.Equal(0, stopped.LeftToExpire);
                Assert.Equal(50, stopped.Released);
            }
            else
            {
                Assert.False(stopped.Deregistered);
                Assert.Equal(0, stopped.Released);
            }
            // Either way the stop's request went out after the cycle's, on the same connection, and deletes what
            // this instance's index names: nothing of the instance is left once both have run.
            await Eventually.TrueAsync(async () => (await KeysOfAsync(instance)).Count == 0, Deadline, "no key of the stopped instance");
            Assert.Empty(a.OwnedSessions());
            Assert.False((await a.RunCycleAsync()).Succeeded); // a stopped instance sends nothing more
            Assert.Empty(await KeysOfAsync(instance));
        }
    }

    [Fact]
    public async Task The_stop_request_deletes_what_an_unanswered_earlier_request_acquired()
    {
        var keys = new RedisKeys(_prefix);
        await LeaseTestHost.NewFleetAsync(fixture.Redis, _prefix);
        var store = new LeaseStore(fixture.Redis, keys, "node-s", LeaseTestHost.FastOptions(_prefix, "node-s"));
        await store.RunAsync(new CycleRequest(HeartbeatMode.Register, [], [], []));

        // Both requests are issued before either answer is read: the acquire runs first, the stop sweeps it.
        var acquire = store.RunAsync(new CycleRequest(HeartbeatMode.Beat, [], LeaseTestHost.Sessions(50), []));
        var stop = store.RunAsync(new CycleRequest(HeartbeatMode.Deregister, [], [], []));
        var late = store.RunAsync(new CycleRequest(HeartbeatMode.Beat, [], ["after-stop"], []));

        Assert.All((await acquire).Acquire, o => Assert.True(o.Token > 0));
        Assert.Equal(50, (await stop).Swept);
        await Assert.ThrowsAsync<InvalidOperationException>(() => late); // issued after the stop: refused, never sent
        Assert.Empty(await KeysOfAsync("node-s"));
        Assert.False(await fixture.Redis.GetDatabase().KeyExistsAsync(keys.Lease("after-stop")));
    }

    [Fact]
    public async Task A_stop_waits_for_the_loops_cycle_in_flight_and_leaves_no_key_behind()
    {
        var sessions = StaticSessionSource.FromIds([]);
        await using var redis = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-b"), sessions);
        var acquired = 0;
        a.LeaseChanged += (_, e) =>
        {
            if (e.Kind == LeaseEventKind.Acquired)
            {
                Interlocked.Increment(ref acquired);
            }
        };
        await a.StartAsync();

        // New sessions appear and the loop is woken to take them; the stop begins while that cycle may be in flight.
        sessions.Set(LeaseTestHost.Records(Enumerable.Range(0, 200).Select(i => $"w-{i:D3}")));
        await fixture.Redis.GetDatabase().StringIncrementAsync($"{{{_prefix}}}:sessions:version");
        await Eventually.TrueAsync(() => Volatile.Read(ref acquired) > 0, Deadline, "the loop starts acquiring");
        var stopped = await a.StopAsync();

        Assert.True(stopped.Deregistered);
        Assert.Equal(0, stopped.LeftToExpire);
        Assert.Equal(200, stopped.Released);
        Assert.Empty(await KeysOfAsync("node-b"));
    }

    [Fact]
    public async Task A_stop_that_cannot_reach_redis_says_how_many_leases_are_left_to_expire_and_does_not_throw()
    {
        await using var server = await fixture.StartDedicatedAsync();
        await using var redis = await fixture.ConnectAsync(server.ConnectionString);
        await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-c"), StaticSessionSource.FromIds(LeaseTestHost.Sessions(7)));
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.OwnedSessions().Count == 7, Deadline, "owns all");

        await server.StopAsync();
        using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var stopped = await a.StopAsync(budget.Token);

        Assert.False(stopped.Deregistered);
        Assert.Equal(0, stopped.Released);
        Assert.Equal(7, stopped.LeftToExpire);
        Assert.Empty(a.OwnedSessions());
    }

    [Fact]
    public async Task Stopping_the_elected_janitors_host_leaves_no_lease_registry_entry_or_leader_key_of_it()
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        foreach (var id in LeaseTestHost.Sessions(6))
        {
            await catalog.AddAsync(id, "record", TimeSpan.FromSeconds(4));
        }
        var settings = GenericTestHost.Settings(fixture.ConnectionString, _prefix, "node-j");
        string Ms(int ms) => TimeSpan.FromMilliseconds(ms).ToString("c", CultureInfo.InvariantCulture);
        settings["PollLease:Janitor:Enabled"] = "true";
        settings["PollLease:Janitor:Interval"] = Ms(200);
        settings["PollLease:Janitor:Election:Ttl"] = Ms(3000);
        settings["PollLease:Janitor:Election:RenewDeadline"] = Ms(2000);
        settings["PollLease:Janitor:Election:RenewInterval"] = Ms(200);
        settings["PollLease:Janitor:Election:RetryPeriod"] = Ms(300);
        settings["PollLease:Janitor:Election:OperationTimeout"] = Ms(1000);
        settings["PollLease:Janitor:Election:DisconnectGracePeriod"] = Ms(1000);
        using var host = await GenericTestHost.StartAsync(settings);
        var db = fixture.Redis.GetDatabase();
        await Eventually.TrueAsync(async () => host.Leases().OwnedSessions().Count == 6 && await db.KeyExistsAsync($"{{{_prefix}}}:leader:janitor"),
            Deadline, "owns every session and is the janitor");

        await host.StopAsync();

        Assert.False(await db.KeyExistsAsync($"{{{_prefix}}}:leader:janitor"));
        Assert.Empty(await KeysOfAsync("node-j"));
    }
}

public sealed class CleanStopTests_RedisServer(RedisServerFixture f) : CleanStopTests(f), IClassFixture<RedisServerFixture>;

public sealed class CleanStopTests_Garnet(GarnetFixture f) : CleanStopTests(f), IClassFixture<GarnetFixture>;
