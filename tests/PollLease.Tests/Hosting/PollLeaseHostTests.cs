using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using PollLease.Coordination;
using PollLease.Messages;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Hosting;

/// <summary>
/// The hosting layer under a plain Generic Host against real Redis: what every Azure Functions worker instance runs
/// from its hosted service, and what the timer and warm-up functions call.
/// </summary>
public abstract class PollLeaseHostTests(RedisFixture fixture)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Start_registers_the_node_and_stop_releases_everything_and_deregisters_within_5_s()
    {
        var prefix = RedisFixture.NewPrefix();
        await SeedAsync(prefix, 4);
        var db = fixture.Redis.GetDatabase();
        using var host = await GenericTestHost.StartAsync(GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-a"));

        // Registered by the time the instance runs: no timer or warm-up trigger is needed for that.
        Assert.NotNull(await db.SortedSetScoreAsync($"{{{prefix}}}:nodes", "host-a"));
        await Eventually.TrueAsync(() => host.Leases().OwnedSessions().Count == 4, Wait, "host-a owns all 4 sessions");

        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var stopwatch = Stopwatch.StartNew();
        await host.StopAsync(grace.Token);
        stopwatch.Stop();

        Assert.False(grace.IsCancellationRequested, $"stop took {stopwatch.Elapsed}, beyond the 5 s worker grace");
        Assert.Null(await db.SortedSetScoreAsync($"{{{prefix}}}:nodes", "host-a"));
        Assert.False(await db.KeyExistsAsync($"{{{prefix}}}:node:host-a"));
        for (var i = 0; i < 4; i++)
        {
            Assert.False(await db.KeyExistsAsync($"{{{prefix}}}:lease:s{i}"), $"lease s{i} still held after stop");
        }
        Assert.Empty(host.Leases().OwnedSessions());
    }

    [Fact]
    public async Task Two_hosts_share_the_sessions_and_the_survivor_takes_all_when_one_stops()
    {
        var prefix = RedisFixture.NewPrefix();
        await SeedAsync(prefix, 6);
        using var a = await GenericTestHost.StartAsync(GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-a"));
        using var b = await GenericTestHost.StartAsync(GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-b"));

        await Eventually.TrueAsync(
            () => a.Leases().OwnedSessions().Count == 3 && b.Leases().OwnedSessions().Count == 3,
            Wait, "the two hosts hold 3 sessions each");
        var ownedA = a.Leases().OwnedSessions().Select(l => l.SessionId).ToHashSet();
        var ownedB = b.Leases().OwnedSessions().Select(l => l.SessionId).ToHashSet();
        Assert.Empty(ownedA.Intersect(ownedB));

        // Both poll what they own (the record handler writes who polled into the session's log).
        var log = new MessageLog(fixture.Redis, prefix);
        await Eventually.TrueAsync(async () =>
        {
            var pollers = new HashSet<string>();
            for (var i = 0; i < 6; i++)
            {
                foreach (var m in await log.ReadAsync($"s{i}"))
                {
                    pollers.Add(global::PollLease.Polling.PollRecord.TryParse(m.Body)?.Instance ?? "");
                }
            }
            return pollers.SetEquals(["host-a", "host-b"]);
        }, Wait, "both hosts poll their sessions");

        await a.StopAsync();
        await Eventually.TrueAsync(() => b.Leases().OwnedSessions().Count == 6, Wait, "host-b takes all 6 after host-a stops");
        await b.StopAsync();
    }

    [Fact]
    public async Task Sessions_from_an_application_source_outside_the_redis_catalog_are_leased_and_polled_once_per_interval()
    {
        var prefix = RedisFixture.NewPrefix();
        // The catalog holds a session the application's source does not: the source, not the catalog, says what is polled.
        await SeedAsync(prefix, 1);
        var interval = TimeSpan.FromSeconds(4);
        string[] ids = ["app-0", "app-1", "app-2"];
        var source = StaticSessionSource.FromIds(ids, interval, "record");
        using var host = await GenericTestHost.StartAsync(GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-a"),
            services => services.AddSingleton<ISessionSource>(source));

        var log = new MessageLog(fixture.Redis, prefix);
        async Task<List<PollRecord>> RecordsAsync(string id) => (await log.ReadAsync(id)).Select(m => PollRecord.TryParse(m.Body)!).ToList();
        await Eventually.TrueAsync(async () =>
        {
            foreach (var id in ids)
            {
                if ((await RecordsAsync(id)).Count < 3)
                {
                    return false;
                }
            }
            return true;
        }, TimeSpan.FromSeconds(60), "every session of the application's source is polled three times");
        await host.StopAsync();

        Assert.Equal(ids, host.Leases().ActiveSessions.Order(StringComparer.Ordinal));
        Assert.Empty(await log.ReadAsync("s0"));
        // Once per interval: consecutive polls of a session were due at least one interval apart (no jitter here; a few ms
        // of slack for the conversion of a recorded start). Due times, not the moments handlers got a thread.
        var floor = interval - TimeSpan.FromMilliseconds(20);
        foreach (var id in ids)
        {
            var records = await RecordsAsync(id);
            Assert.All(records, r => Assert.Equal("host-a", r.Instance));
            for (var i = 1; i < records.Count; i++)
            {
                var gap = records[i].Scheduled - records[i - 1].Scheduled;
                Assert.True(gap >= floor, $"{id}: poll {i} was due {gap.TotalMilliseconds:0} ms after the previous one");
            }
        }
    }

    [Fact]
    public async Task A_timer_driven_cycle_and_the_hosted_cycle_firing_together_run_one_at_a_time()
    {
        var prefix = RedisFixture.NewPrefix();
        var source = new GatedSource(["s0", "s1"]);
        var settings = GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-a");
        // Only lease cycles may read the gated source here (the janitor reads it too, to publish the assignment).
        settings["PollLease:Janitor:Enabled"] = "false";
        using var host = await GenericTestHost.StartAsync(settings, services => services.AddSingleton<ISessionSource>(source));

        // Hold the hosted loop inside its next cycle.
        source.Close();
        await Eventually.TrueAsync(() => source.Inside == 1, Wait, "the hosted loop's cycle is inside the session read");

        // The timer function fires now. Without the cycle gate it would enter the cycle at once (the session read is
        // the first thing a cycle does, synchronously up to there), making Inside 2.
        var timer = host.Triggers().RunLeaseCycleAsync("timer");
        Assert.Equal(1, source.Inside);
        Assert.False(timer.IsCompleted);

        source.Open();
        var result = await timer.WaitAsync(Wait);
        Assert.NotNull(result);
        Assert.True(result.Succeeded);
        Assert.Equal(1, source.MaxInside);
        Assert.True(source.Entries >= 2, $"expected the hosted and the timer cycle, saw {source.Entries} entries");
        await host.StopAsync();
    }

    [Fact]
    public async Task A_trigger_does_nothing_before_start_and_after_stop_so_a_late_timer_cannot_register_again()
    {
        var prefix = RedisFixture.NewPrefix();
        await SeedAsync(prefix, 2);
        var db = fixture.Redis.GetDatabase();
        using var host = GenericTestHost.Build(GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-a"));

        Assert.Null(await host.Triggers().RunLeaseCycleAsync("timer"));
        Assert.Null(await db.SortedSetScoreAsync($"{{{prefix}}}:nodes", "host-a"));

        await host.StartAsync();
        var running = await host.Triggers().RunLeaseCycleAsync("warmup");
        Assert.NotNull(running);
        Assert.True(running.Succeeded);
        await host.StopAsync();

        Assert.Null(await host.Triggers().RunLeaseCycleAsync("timer"));
        Assert.Null(await db.SortedSetScoreAsync($"{{{prefix}}}:nodes", "host-a"));
        Assert.False(await db.KeyExistsAsync($"{{{prefix}}}:lease:s0"));
    }

    [Fact]
    public async Task PollNow_runs_a_scheduling_pass_at_once_instead_of_at_the_next_tick()
    {
        var prefix = RedisFixture.NewPrefix();
        var settings = GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-a");
        settings["PollLease:Polling:Tick"] = "00:00:04";
        // A frozen clock: the poll loop's next tick never comes by itself, so only PollNow can start the poll.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        // A new fleet (no data-loss quarantine): the instance's start-up cycle acquires "early", so the poll loop's first
        // pass, which runs after that cycle, polls it at once (no jitter).
        await Coordination.LeaseTestHost.NewFleetAsync(fixture.Redis, prefix);
        await new SessionCatalog(fixture.Redis, prefix).AddAsync("early", "record", TimeSpan.FromSeconds(4));
        using var host = await GenericTestHost.StartAsync(settings, services => services.AddSingleton<TimeProvider>(time));
        var log = new MessageLog(fixture.Redis, prefix);
        // Once the first pass has polled "early", it cannot see the late session: only PollNow can poll it.
        await Eventually.TrueAsync(async () => (await log.ReadAsync("early")).Count == 1, Wait, "the poll loop's first pass polled the early session");

        // Added after the poll loop's first pass; the lease cycle picks it up (the catalog version changed).
        await new SessionCatalog(fixture.Redis, prefix).AddAsync("late", "record", TimeSpan.FromSeconds(4));
        await Eventually.TrueAsync(async () =>
        {
            await host.Triggers().RunLeaseCycleAsync("timer");
            return host.Leases().IsOwned("late");
        }, Wait, "host-a owns the late session");
        Assert.Empty(await log.ReadAsync("late"));

        Assert.Equal(2, host.Triggers().PollNow("poll"));
        await Eventually.TrueAsync(async () => (await log.ReadAsync("late")).Count == 1, Wait, "the late session is polled once");
        await host.StopAsync();
        // Not due again on the frozen clock: the pass polled only what was due.
        Assert.Single(await log.ReadAsync("early"));
    }

    [Fact]
    public async Task A_timer_triggered_cycle_on_the_janitor_sweeps_the_fleet_at_once()
    {
        var prefix = RedisFixture.NewPrefix();
        await SeedAsync(prefix, 2);
        var settings = GenericTestHost.Settings(fixture.ConnectionString, prefix, "host-a");
        // The janitor's own loop sweeps once when elected, then not for an hour: a later sweep is the trigger's.
        settings["PollLease:Janitor:Interval"] = "01:00:00";
        using var host = await GenericTestHost.StartAsync(settings);
        var janitor = host.Services.GetRequiredService<global::PollLease.Hosting.FleetJanitorHostedService>().Janitor!;
        await Eventually.TrueAsync(() => janitor.IsJanitor && janitor.LastSweep is not null, Wait, "host-a elected janitor and swept once");

        var first = janitor.LastSweep;
        var db = fixture.Redis.GetDatabase();
        await db.StringSetAsync($"{{{prefix}}}:lease:removed", "crashed|1", TimeSpan.FromMinutes(5));

        await host.Triggers().RunLeaseCycleAsync("timer");

        Assert.NotSame(first, janitor.LastSweep);
        Assert.False(await db.KeyExistsAsync($"{{{prefix}}}:lease:removed"), "the removed session's lease is cleaned by the triggered sweep");
        Assert.Equal(1, janitor.LastSweep!.RemovedLeases);
        await host.StopAsync();
    }

    private async Task SeedAsync(string prefix, int count)
    {
        var catalog = new SessionCatalog(fixture.Redis, prefix);
        for (var i = 0; i < count; i++)
        {
            await catalog.AddAsync($"s{i}", "record", TimeSpan.FromSeconds(4));
        }
    }

    /// <summary>A session source whose reads can be held, counting how many cycles are inside at once.</summary>
    private sealed class GatedSource(IEnumerable<string> ids) : ISessionSource
    {
        private readonly StaticSessionSource _sessions = StaticSessionSource.FromIds(ids);
        private readonly object _lock = new();
        private TaskCompletionSource _gate = Opened();
        private int _inside;

        public int Inside => Volatile.Read(ref _inside);

        public int MaxInside { get; private set; }

        public int Entries { get; private set; }

        public void Close()
        {
            lock (_lock)
            {
                _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        public void Open()
        {
            lock (_lock)
            {
                _gate.TrySetResult();
            }
        }

        public async ValueTask<IReadOnlyDictionary<string, PollSession>> GetSessionsAsync(string catalogVersion, CancellationToken cancellationToken)
        {
            Task gate;
            lock (_lock)
            {
                var inside = Interlocked.Increment(ref _inside);
                MaxInside = Math.Max(MaxInside, inside);
                Entries++;
                gate = _gate.Task;
            }
            try
            {
                await gate.WaitAsync(cancellationToken);
                return await _sessions.GetSessionsAsync(catalogVersion, cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _inside);
            }
        }

        private static TaskCompletionSource Opened()
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            tcs.SetResult();
            return tcs;
        }
    }
}

public sealed class PollLeaseHostTests_RedisServer(RedisServerFixture f) : PollLeaseHostTests(f), IClassFixture<RedisServerFixture>;

public sealed class PollLeaseHostTests_Garnet(GarnetFixture f) : PollLeaseHostTests(f), IClassFixture<GarnetFixture>;
