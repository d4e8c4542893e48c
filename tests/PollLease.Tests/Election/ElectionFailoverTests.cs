using System.Collections.Concurrent;
using PollLease.Election;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;
using static PollLease.Tests.Election.ElectionTestKit;

namespace PollLease.Tests.Election;

/// <summary>Crashes, herds and outages, each candidate on its own connection as separate processes would be.</summary>
public abstract class ElectionFailoverTests(RedisFixture fixture, ITestOutputHelper output)
{
    private const int Candidates = 20;
    private const int Crashes = 3;
    private readonly string _prefix = RedisFixture.NewPrefix();

    [Fact]
    public async Task Thundering_herd_of_twenty_at_start_and_after_each_crash_never_has_two_believers_and_elects_within_ttl_plus_retry()
    {
        var fence = $"{{{_prefix}}}:resource:fence";
        var violations = new ConcurrentQueue<string>();
        var connections = new ConnectionMultiplexer[Candidates];
        var elections = new LeaderElection[Candidates];
        var writers = new ConcurrentBag<Task>();
        for (var i = 0; i < Candidates; i++)
        {
            connections[i] = await fixture.ConnectAsync();
            var index = i;
            elections[i] = new LeaderElection(connections[i], Fast(_prefix, $"node-{i:00}"), new ElectionCallbacks
            {
                // The leader writes under its token for its whole term; a write rejected while it still believes it
                // leads means a newer leader wrote at the same time: two believers.
                OnPromote = term =>
                {
                    var writer = WriteWhileLeadingAsync(elections[index], connections[index], fence, term, violations);
                    writers.Add(writer);
                    return writer;
                },
            });
        }
        using var sampling = new CancellationTokenSource();
        var maxBelievers = 0;
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                var believers = elections.Count(e => e.IsLeader);
                InterlockedMax(ref maxBelievers, believers);
                await Task.Delay(2, CancellationToken.None);
            }
        });
        var alive = elections.ToList();
        try
        {
            await Task.WhenAll(elections.Select(e => e.StartAsync()));
            var leader = await OneLeaderAsync(alive);
            var tokens = new List<long> { leader.Token };
            for (var crash = 0; crash < Crashes; crash++)
            {
                // Crash: the loop stops and the connection dies without releasing; the key must expire by itself.
                var index = Array.IndexOf(elections, leader);
                alive.Remove(leader);
                await leader.StopAsync(new ElectionStopOptions { DeleteKey = false, DemoteTimeout = TimeSpan.FromMilliseconds(100) });
                await connections[index].CloseAsync(allowCommandsToComplete: false);
                var db = fixture.Redis.GetDatabase();
                var pttl = (long)await db.ExecuteAsync("PTTL", LeaderKey(_prefix));
                var crashedAt = ServerMs(await db.ExecuteAsync("TIME"));

                leader = await OneLeaderAsync(alive);
                // The new token is max(last + 1, Redis time ms) at its election: Redis' own clock dates the takeover.
                var takeover = leader.Token - (crashedAt + pttl);
                output.WriteLine($"crash {crash + 1}: key had {pttl} ms left; new leader {leader.InstanceId} elected {takeover} ms after the key expired (bound: retry period x 1.2 = 240 ms)");
                Assert.True(leader.Token > tokens[^1]);
                Assert.True(takeover <= 240 + 2000, $"takeover {takeover} ms after expiry"); // + slack for a loaded machine
                tokens.Add(leader.Token);
            }
            await Eventually.TrueAsync(() => !writers.IsEmpty, Deadline, "writers ran");
        }
        finally
        {
            await sampling.CancelAsync();
            await sampler;
            foreach (var e in elections)
            {
                await e.DisposeAsync();
            }
            foreach (var c in connections)
            {
                await c.DisposeAsync();
            }
        }
        await Task.WhenAll(writers);
        output.WriteLine($"max simultaneous believers sampled: {maxBelievers}; violations: {violations.Count}");
        Assert.Empty(violations);
        Assert.Equal(1, maxBelievers);
    }

    [Fact]
    public async Task Redis_down_demotes_the_leader_after_the_grace_period_and_an_election_completes_when_it_returns()
    {
        await using var server = await fixture.StartDedicatedAsync();
        await using var ca = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString);
        await using var cb = await ConnectionMultiplexer.ConnectAsync(server.ConnectionString);
        var demotions = new ConcurrentQueue<string>();
        var callbacks = new ElectionCallbacks { OnDemote = r => { demotions.Enqueue(r); return Task.CompletedTask; } };
        await using var a = new LeaderElection(ca, Fast(_prefix, "node-a"), callbacks);
        await using var b = new LeaderElection(cb, Fast(_prefix, "node-b"), callbacks);
        await a.StartAsync();
        await Eventually.TrueAsync(() => a.IsLeader, Deadline, "node-a leads");
        await b.StartAsync();
        await Eventually.TrueAsync(() => b.CurrentLeader == "node-a", Deadline, "node-b follows");
        var before = a.Token;

        await server.StopAsync();

        await Eventually.TrueAsync(() => !a.IsLeader && !demotions.IsEmpty, Deadline, "node-a demotes without Redis");
        Assert.False(b.IsLeader);
        Assert.Contains(Assert.Single(demotions), new[] { DemotionReasons.Disconnected, DemotionReasons.Deadline });
        output.WriteLine($"demoted: {string.Join(",", demotions)}");

        await server.StartAsync(); // empty: the fence key is gone too, yet the next token is still larger (server time)

        await Eventually.TrueAsync(() => a.IsLeader ^ b.IsLeader, Deadline, "an election completes");
        var leader = a.IsLeader ? a : b;
        Assert.True(leader.Token > before);
        await Eventually.TrueAsync(() => a.CurrentLeader == leader.InstanceId && b.CurrentLeader == leader.InstanceId, Deadline, "both agree");
        Assert.True(await leader.ValidateTokenAsync());
    }

    private static async Task WriteWhileLeadingAsync(LeaderElection election, IConnectionMultiplexer redis, string fence, ElectionTerm term, ConcurrentQueue<string> violations)
    {
        while (!term.Leadership.IsCancellationRequested)
        {
            if (election.IsLeader)
            {
                bool accepted;
                try
                {
                    accepted = await FencedWriteAsync(redis, fence, term.Token);
                }
                catch (RedisException)
                {
                    return; // its connection was closed by the crash
                }
                if (!accepted && election.IsLeader)
                {
                    violations.Enqueue($"{election.InstanceId} still led with token {term.Token} after a newer token wrote");
                }
            }
            try
            {
                await Task.Delay(10, term.Leadership);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task<LeaderElection> OneLeaderAsync(IReadOnlyList<LeaderElection> candidates)
    {
        await Eventually.TrueAsync(() => candidates.Count(e => e.IsLeader) == 1, Deadline, "one leader");
        return candidates.Single(e => e.IsLeader);
    }

    private static long ServerMs(RedisResult time)
    {
        var t = (RedisResult[])time!;
        return (long)t[0] * 1000 + (long)t[1] / 1000;
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}

public sealed class ElectionFailoverTests_RedisServer(RedisServerFixture f, ITestOutputHelper o) : ElectionFailoverTests(f, o), IClassFixture<RedisServerFixture>;

public sealed class ElectionFailoverTests_Garnet(GarnetFixture f, ITestOutputHelper o) : ElectionFailoverTests(f, o), IClassFixture<GarnetFixture>;
