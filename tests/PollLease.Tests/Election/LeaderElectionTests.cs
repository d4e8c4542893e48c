using System.Collections.Concurrent;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using PollLease.Election;
using PollLease.Tests.Infrastructure;
using static PollLease.Tests.Election.ElectionTestKit;

namespace PollLease.Tests.Election;

public abstract class LeaderElectionTests(RedisFixture fixture)
{
    private readonly string _prefix = RedisFixture.NewPrefix();

    [Fact]
    public async Task A_lone_candidate_acquires_the_key_with_its_id_and_a_time_based_token()
    {
        await using var a = new LeaderElection(fixture.Redis, Options(_prefix, "node-a"));
        await a.StartAsync();

        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads");

        var value = await fixture.Redis.GetDatabase().StringGetAsync(LeaderKey(_prefix));
        Assert.Equal($"node-a|{a.Token}", value.ToString());
        Assert.Equal("node-a", a.CurrentLeader);
        var serverMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.InRange(a.Token, serverMs - 60_000, serverMs + 60_000); // max(last + 1, server time ms)
        Assert.True(await a.ValidateTokenAsync());
        var pttl = (long)await fixture.Redis.GetDatabase().ExecuteAsync("PTTL", LeaderKey(_prefix));
        Assert.InRange(pttl, 1, 3000);
        Assert.True(a.Status is { IsLeader: true, Running: true, CurrentLeader: "node-a", CircuitOpen: false });
    }

    [Fact]
    public async Task A_leader_key_of_the_wrong_type_costs_no_store_error_and_the_role_is_taken_once_it_is_gone()
    {
        var db = fixture.Redis.GetDatabase();
        await db.HashSetAsync(LeaderKey(_prefix), "by", "hand");
        await db.KeyExpireAsync(LeaderKey(_prefix), TimeSpan.FromMinutes(5));
        using var meterFactory = new TestMeterFactory();
        using var failures = new MetricCollector<long>(meterFactory, PollLease.Telemetry.PollLeaseTelemetry.MeterName, "election_failures_total");
        await using var a = new LeaderElection(fixture.Redis, Options(_prefix, "node-a"), meterFactory: meterFactory);
        await a.StartAsync();

        // The guarded GET answers 'wrong-type': seen as a foreign holder, never as a failing script.
        await Eventually.TrueAsync(() => a.Status.Running && !a.IsLeader, Deadline, "node-a follows");
        Assert.False(a.Status.CircuitOpen);
        Assert.DoesNotContain(failures.GetMeasurementSnapshot(), m => Equals(m.Tags["operation"], "acquire"));

        await db.KeyDeleteAsync(LeaderKey(_prefix));
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads once the key is gone");
        Assert.DoesNotContain(failures.GetMeasurementSnapshot(), m => Equals(m.Tags["operation"], "acquire"));
    }

    [Fact]
    public async Task Of_ten_candidates_started_together_exactly_one_wins_and_the_others_follow_it()
    {
        var elections = Enumerable.Range(0, 10).Select(i => new LeaderElection(fixture.Redis, Options(_prefix, $"node-{i}"))).ToArray();
        try
        {
            await Task.WhenAll(elections.Select(e => e.StartAsync()));
            await Eventually.TrueAsync(() => elections.Count(e => e.IsLeader) == 1 && elections.All(e => e.CurrentLeader is not null), Deadline, "one leader, known to all");

            var leader = Assert.Single(elections, e => e.IsLeader);
            Assert.All(elections, e => Assert.Equal(leader.InstanceId, e.CurrentLeader));
            Assert.All(elections.Where(e => e != leader), e => Assert.Equal(0, e.Token));
            var value = await fixture.Redis.GetDatabase().StringGetAsync(LeaderKey(_prefix));
            Assert.Equal($"{leader.InstanceId}|{leader.Token}", value.ToString());
        }
        finally
        {
            foreach (var e in elections)
            {
                await e.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Full_cycle_start_leader_demoted_by_a_foreign_value_follower_then_leader_again_with_a_newer_token()
    {
        var events = new ConcurrentQueue<string>();
        await using var a = new LeaderElection(fixture.Redis, Options(_prefix, "node-a"), new ElectionCallbacks
        {
            OnPromote = t => { events.Enqueue($"promote:{t.Token}"); return Task.CompletedTask; },
            OnDemote = r => { events.Enqueue($"demote:{r}"); return Task.CompletedTask; },
            OnNewLeader = l => { events.Enqueue($"leader:{l}"); return Task.CompletedTask; },
        });
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads");
        var first = a.Token;

        // Someone else's value in the key: the next compare-and-set renew fails and demotes at once.
        await fixture.Redis.GetDatabase().StringSetAsync(LeaderKey(_prefix), "intruder|1", TimeSpan.FromSeconds(30));
        await Eventually.TrueAsync(() => !a.IsLeader && a.CurrentLeader == "intruder", Deadline, "node-a follows the intruder");
        Assert.False(await a.ValidateTokenAsync(first));

        await fixture.Redis.GetDatabase().KeyDeleteAsync(LeaderKey(_prefix));
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads again");
        Assert.True(a.Token > first);
        await Eventually.TrueAsync(() => events.Count >= 6, Deadline, "six callbacks");

        Assert.Equal(["leader:node-a", $"promote:{first}", "demote:lost", "leader:intruder", "leader:node-a", $"promote:{a.Token}"], events.ToArray());
    }

    [Fact]
    public async Task Callbacks_arrive_in_order_promotion_token_is_cancelled_at_demotion_and_a_throwing_callback_does_not_stop_the_loop()
    {
        var events = new ConcurrentQueue<string>();
        var promoteEnded = new TaskCompletionSource();
        await using var a = new LeaderElection(fixture.Redis, Options(_prefix, "node-a"), new ElectionCallbacks
        {
            OnNewLeader = l =>
            {
                events.Enqueue($"leader:{l}");
                throw new InvalidOperationException("observer bug");
            },
            OnPromote = async t =>
            {
                events.Enqueue("promote");
                try
                {
                    await Task.Delay(Timeout.Infinite, t.Leadership);
                }
                catch (OperationCanceledException)
                {
                    promoteEnded.TrySetResult();
                    throw;
                }
            },
            OnDemote = r =>
            {
                events.Enqueue($"demote:{r}");
                throw new InvalidOperationException("cleanup bug");
            },
        });
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader && events.Count >= 2, Deadline, "node-a leads");
        var token = a.Token;
        // Survives its callbacks' exceptions: it keeps renewing well past the TTL.
        await Eventually.TrueAsync(async () => (long)await fixture.Redis.GetDatabase().ExecuteAsync("PTTL", LeaderKey(_prefix)) > 2500 && a.IsLeader, Deadline, "renewed");

        await fixture.Redis.GetDatabase().StringSetAsync(LeaderKey(_prefix), "node-b|" + (token + 1), TimeSpan.FromSeconds(30));
        await promoteEnded.Task.WaitAsync(Deadline);
        await Eventually.TrueAsync(() => events.Count >= 4, Deadline, "demotion callbacks");

        Assert.Equal(["leader:node-a", "promote", "demote:lost", "leader:node-b"], events.ToArray());
        Assert.Equal(token.ToString(System.Globalization.CultureInfo.InvariantCulture), (await fixture.Redis.GetDatabase().StringGetAsync(LeaderKey(_prefix) + ":fence")).ToString());
    }

    [Fact]
    public async Task Stop_with_key_deletion_hands_over_at_once_and_stop_without_it_leaves_the_key_to_expire()
    {
        var demoted = new ConcurrentQueue<string>();
        var a = new LeaderElection(fixture.Redis, Options(_prefix, "node-a"), new ElectionCallbacks { OnDemote = r => { demoted.Enqueue(r); return Task.CompletedTask; } });
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads");
        await using var b = new LeaderElection(fixture.Redis, Options(_prefix, "node-b"));
        await b.StartAsync();
        await Eventually.TrueAsync(() => b.CurrentLeader == "node-a", Deadline, "node-b follows");

        Assert.True(await a.StopAsync(new ElectionStopOptions { DeleteKey = true }));
        Assert.False(a.IsLeader);
        Assert.Equal(["stopped"], demoted.ToArray());
        // The release is announced: node-b stands on the event rather than waiting for a TTL it never saw expire.
        await Eventually.TrueAsync(() => b.IsLeader, Deadline, "node-b leads");
        await a.DisposeAsync();

        var bToken = b.Token;
        Assert.True(await b.StopAsync(new ElectionStopOptions { DeleteKey = false }));
        Assert.False(b.IsLeader);
        var value = await fixture.Redis.GetDatabase().StringGetAsync(LeaderKey(_prefix));
        Assert.Equal($"node-b|{bToken}", value.ToString());
        var pttl = (long)await fixture.Redis.GetDatabase().ExecuteAsync("PTTL", LeaderKey(_prefix));
        Assert.InRange(pttl, 1, 3000);
    }

    [Fact]
    public async Task Stop_waits_for_OnDemote_only_up_to_its_timeout_and_honours_the_callers_cancellation()
    {
        var never = new TaskCompletionSource();
        await using var a = new LeaderElection(fixture.Redis, Options(_prefix, "node-a"), new ElectionCallbacks { OnDemote = _ => never.Task });
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads");

        var completed = await a.StopAsync(new ElectionStopOptions { DemoteTimeout = TimeSpan.FromMilliseconds(200) });

        Assert.False(completed);
        Assert.False(a.IsLeader);
        Assert.False(await fixture.Redis.GetDatabase().KeyExistsAsync(LeaderKey(_prefix)));

        await using var c = new LeaderElection(fixture.Redis, Options(_prefix, "node-c"), new ElectionCallbacks { OnDemote = _ => never.Task });
        await c.StartAsync();
        await Eventually.TrueAsync(() => c.IsLeader, Deadline, "node-c leads");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => c.StopAsync(new ElectionStopOptions { DemoteTimeout = TimeSpan.FromMinutes(5) }, cancel.Token));
        Assert.False(c.IsLeader);
        never.TrySetResult();
    }

    [Fact]
    public async Task Failing_health_checks_make_the_leader_step_down_release_the_key_and_stay_out_while_unhealthy()
    {
        var healthy = true;
        var demoted = new ConcurrentQueue<string>();
        await using var a = new LeaderElection(fixture.Redis, Options(_prefix, "node-a"), new ElectionCallbacks
        {
            HealthCheck = _ => Task.FromResult(Volatile.Read(ref healthy)),
            OnDemote = r => { demoted.Enqueue(r); return Task.CompletedTask; },
        });
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads");
        await using var b = new LeaderElection(fixture.Redis, Options(_prefix, "node-b"));
        await b.StartAsync();

        Volatile.Write(ref healthy, false);

        await Eventually.TrueAsync(() => b.IsLeader, Deadline, "node-b takes over");
        Assert.False(a.IsLeader);
        Assert.Equal(["unhealthy"], demoted.ToArray());
        // While unhealthy node-a does not stand, even for a free key.
        await b.StopAsync(new ElectionStopOptions { DeleteKey = true });
        await Eventually.TrueAsync(async () => !await fixture.Redis.GetDatabase().KeyExistsAsync(LeaderKey(_prefix)), Deadline, "key gone");
        Assert.False(a.IsLeader);

        Volatile.Write(ref healthy, true);
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a stands again once healthy");
    }

    [Fact]
    public async Task A_paused_leader_demotes_itself_before_another_is_elected_and_its_stale_token_is_rejected()
    {
        var sequence = new ConcurrentQueue<string>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pause = false;
        long aToken = 0;
        var fence = $"{{{_prefix}}}:resource:fence";
        LeaderElection? aRef = null;
        // node-a's renews go through a store that holds them while paused, as a GC pause or SIGSTOP would.
        await using var a = new LeaderElection(fixture.Redis, Fast(_prefix, "node-a"), new ElectionCallbacks
        {
            OnPromote = t =>
            {
                Interlocked.CompareExchange(ref aToken, t.Token, 0);
                t.Leadership.Register(() => sequence.Enqueue("a-ended"));
                return Task.CompletedTask;
            },
        }, null, null, null, store => new HeldRenewStore(store, async ct =>
        {
            if (Volatile.Read(ref pause))
            {
                await gate.Task.WaitAsync(ct);
            }
        }));
        aRef = a;
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader && Interlocked.Read(ref aToken) != 0, Deadline, "node-a leads");
        Assert.True(await FencedWriteAsync(fixture.Redis, fence, aToken));

        long bToken = 0;
        var aLeadWhenBPromoted = true;
        await using var b = new LeaderElection(fixture.Redis, Fast(_prefix, "node-b"), new ElectionCallbacks
        {
            OnPromote = t =>
            {
                aLeadWhenBPromoted = aRef.IsLeader;
                sequence.Enqueue("b-promoted");
                Interlocked.Exchange(ref bToken, t.Token);
                return Task.CompletedTask;
            },
        });
        await b.StartAsync();
        Volatile.Write(ref pause, true); // node-a's loop stops at its next renew, as in a GC pause or SIGSTOP

        await Eventually.TrueAsync(() => Interlocked.Read(ref bToken) != 0, Deadline, "node-b elected");
        Assert.Equal(["a-ended", "b-promoted"], sequence.ToArray());
        Assert.False(aLeadWhenBPromoted);
        Assert.False(a.IsLeader);
        Assert.True(bToken > aToken);
        Assert.True(await FencedWriteAsync(fixture.Redis, fence, bToken));

        // The paused leader wakes up with its old token: rejected by validation and by the fenced write.
        gate.SetResult();
        Assert.False(await a.ValidateTokenAsync(aToken));
        Assert.False(await FencedWriteAsync(fixture.Redis, fence, aToken));
        await Eventually.TrueAsync(() => a.CurrentLeader == "node-b", Deadline, "node-a sees node-b");
        Assert.False(a.IsLeader);
        Assert.True(b.IsLeader);
        Assert.True(await b.ValidateTokenAsync());
    }

    [Fact]
    public async Task On_the_clock_the_leader_stops_at_its_renew_deadline_even_when_its_loop_is_stuck()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var start = time.GetUtcNow();
        var demoted = new TaskCompletionSource<string>();
        var entered = new TaskCompletionSource();
        var stuck = new TaskCompletionSource();
        var options = Options(_prefix, "node-a");
        await using var a = new LeaderElection(fixture.Redis, options, new ElectionCallbacks { OnDemote = r => { demoted.TrySetResult(r); return Task.CompletedTask; } },
            time, null, null, store => new HeldRenewStore(store, ct =>
            {
                entered.TrySetResult();
                return stuck.Task.WaitAsync(ct);
            }));
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads");
        // Move the fake clock until the loop reaches its first renew and hangs there.
        await Eventually.TrueAsync(() =>
        {
            if (!entered.Task.IsCompleted && time.GetUtcNow() - start < options.RenewDeadline / 2)
            {
                time.Advance(TimeSpan.FromMilliseconds(20));
            }
            return entered.Task.IsCompleted;
        }, Deadline, "the loop is stuck in its renew");

        time.Advance(options.RenewDeadline - (time.GetUtcNow() - start) - TimeSpan.FromMilliseconds(1));
        Assert.True(a.IsLeader);
        time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.False(a.IsLeader); // evaluated against the clock: no timer or loop needed
        Assert.Equal(0, a.Token);
        Assert.Equal(DemotionReasons.Deadline, await demoted.Task.WaitAsync(Deadline));
        // The key itself is still there: nobody else could have been elected yet (Ttl > RenewDeadline).
        Assert.True(await fixture.Redis.GetDatabase().KeyExistsAsync(LeaderKey(_prefix)));
        stuck.SetResult();
    }

    [Fact]
    public async Task A_released_key_is_announced_so_a_follower_stands_at_once_rather_than_at_its_next_check()
    {
        // Keys living 30 s and checks every 15-18 s: without the release event node-b would wait that long.
        ElectionOptions Slow(string id)
        {
            var o = Options(_prefix, id);
            o.Ttl = TimeSpan.FromSeconds(30);
            o.RenewDeadline = TimeSpan.FromSeconds(20);
            o.RetryPeriod = TimeSpan.FromSeconds(15);
            o.MaxBackoff = TimeSpan.FromSeconds(30);
            return o;
        }
        await using var a = new LeaderElection(fixture.Redis, Slow("node-a"));
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads");
        await using var b = new LeaderElection(fixture.Redis, Slow("node-b"));
        await b.StartAsync();
        await Eventually.TrueAsync(() => b.CurrentLeader == "node-a", Deadline, "node-b follows");

        await a.StopAsync(new ElectionStopOptions { DeleteKey = true });

        await Eventually.TrueAsync(() => b.IsLeader, TimeSpan.FromSeconds(10), "node-b leads on the release event");
        await Assert.ThrowsAsync<InvalidOperationException>(() => b.StartAsync()); // one loop per election
    }

    [Fact]
    public async Task Metrics_report_leadership_transitions_heartbeats_and_failures_with_role_and_instance()
    {
        using var meters = new TestMeterFactory();
        await using var a = new LeaderElection(fixture.Redis, Options(_prefix, "node-a"), new ElectionCallbacks
        {
            OnPromote = _ => throw new InvalidOperationException("callback bug"),
        }, meterFactory: meters);
        using var isLeader = new MetricCollector<int>(meters, PollLease.Telemetry.PollLeaseTelemetry.MeterName, "election_is_leader");
        using var transitions = new MetricCollector<long>(meters, PollLease.Telemetry.PollLeaseTelemetry.MeterName, "election_transitions_total");
        using var heartbeat = new MetricCollector<double>(meters, PollLease.Telemetry.PollLeaseTelemetry.MeterName, "election_heartbeat_duration_seconds");
        using var failures = new MetricCollector<long>(meters, PollLease.Telemetry.PollLeaseTelemetry.MeterName, "election_failures_total");
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader && heartbeat.GetMeasurementSnapshot().Count > 0 && failures.GetMeasurementSnapshot().Count > 0, Deadline, "leads and renews");
        isLeader.RecordObservableInstruments();
        Assert.Equal(1, isLeader.LastMeasurement!.Value);
        Assert.Equal("test", isLeader.LastMeasurement.Tags["role"]);
        Assert.Equal("node-a", isLeader.LastMeasurement.Tags["instance"]);

        await a.StopAsync();
        isLeader.RecordObservableInstruments();

        Assert.Equal(0, isLeader.LastMeasurement!.Value);
        var t = transitions.GetMeasurementSnapshot();
        Assert.Equal(["leader", "follower"], t.Select(m => (string)m.Tags["to"]!));
        Assert.Equal(DemotionReasons.Stopped, t[1].Tags["reason"]);
        Assert.Equal("callback", failures.GetMeasurementSnapshot()[0].Tags["operation"]);
        Assert.All(heartbeat.GetMeasurementSnapshot(), m => Assert.True(m.Value >= 0));
    }

    [Fact]
    public async Task Role_manager_runs_one_election_per_role_and_aggregates_their_status()
    {
        await using var one = new RoleManager(fixture.Redis, Options(_prefix, "node-1"));
        await using var two = new RoleManager(fixture.Redis, Options(_prefix, "node-2"));
        string[] roles = ["janitor", "reporter", "compactor"];
        foreach (var role in roles)
        {
            one.AddRole(role);
            two.AddRole(role);
        }
        Assert.Throws<ArgumentException>(() => one.AddRole("janitor"));
        Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => one.AddRole("bad role"));
        await one.StartAsync();
        await two.StartAsync();

        await Eventually.TrueAsync(() => roles.All(r => one.IsLeader(r) ^ two.IsLeader(r)), Deadline, "each role led by exactly one");
        Assert.Equal(3, one.LeadingRoles.Count + two.LeadingRoles.Count);
        Assert.Equal(roles.Order(), one.Status.Keys.Order());
        Assert.All(one.Status, s => Assert.Equal(s.Value.IsLeader ? "node-1" : "node-2", s.Value.CurrentLeader));
        foreach (var role in roles)
        {
            var holder = one.IsLeader(role) ? "node-1" : "node-2";
            Assert.StartsWith(holder + "|", (await fixture.Redis.GetDatabase().StringGetAsync(LeaderKey(_prefix, role))).ToString(), StringComparison.Ordinal);
        }

        Assert.True(await one.StopAsync());
        await Eventually.TrueAsync(() => two.LeadingRoles.Count == 3, Deadline, "node-2 leads every role");
        Assert.All(two.Status.Values, s => Assert.True(s.IsLeader));
    }
}

/// <summary>The real Redis store, with each renew first awaiting <paramref name="hold"/>: a leader whose process is paused.</summary>
internal sealed class HeldRenewStore(IElectionStore inner, Func<CancellationToken, Task> hold) : IElectionStore
{
    public Task<AcquireReply> AcquireAsync(CancellationToken cancellationToken) => inner.AcquireAsync(cancellationToken);

    public async Task<RenewReply> RenewAsync(string value, CancellationToken cancellationToken)
    {
        await hold(cancellationToken);
        return await inner.RenewAsync(value, cancellationToken);
    }

    public Task<bool> ReleaseAsync(string value, CancellationToken cancellationToken) => inner.ReleaseAsync(value, cancellationToken);

    public Task<string?> ReadAsync(CancellationToken cancellationToken) => inner.ReadAsync(cancellationToken);
}

public sealed class LeaderElectionTests_RedisServer(RedisServerFixture f) : LeaderElectionTests(f), IClassFixture<RedisServerFixture>;

public sealed class LeaderElectionTests_Garnet(GarnetFixture f) : LeaderElectionTests(f), IClassFixture<GarnetFixture>;
