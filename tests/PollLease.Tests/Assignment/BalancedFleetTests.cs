using System.Collections.Concurrent;
using PollLease.Assignment;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Tests.Coordination;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Assignment;

/// <summary>Five instances on real Redis joining, leaving, crashing and rejoining: never two owners, and the fleet settles on the assignment function's answer.</summary>
public abstract class BalancedFleetTests(RedisFixture fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly string[] _sessions = LeaseTestHost.Sessions(23);

    private sealed record Member(LeaseManager Leases, IConnectionMultiplexer Redis);

    [Fact]
    public async Task Join_leave_crash_and_rejoin_never_make_two_owners_and_settle_on_the_assignment()
    {
        var members = new List<Member>();
        var events = new ConcurrentQueue<LeaseEvent>();

        async Task<Member> StartAsync(string id)
        {
            var redis = await fixture.ConnectAsync();
            var leases = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, id), new StaticSessionDirectory(_sessions));
            leases.LeaseChanged += (_, e) => events.Enqueue(e);
            var member = new Member(leases, redis);
            lock (members)
            {
                members.Add(member);
            }
            await leases.StartAsync();
            return member;
        }

        Member[] Live()
        {
            lock (members)
            {
                return members.ToArray();
            }
        }

        async Task SettledAsync(IReadOnlyList<Member> running, string what)
        {
            var ids = running.Select(m => m.Leases.InstanceId).ToArray();
            var expected = BalancedAssignment.Compute(ids, _sessions);
            await Eventually.TrueAsync(
                () => running.All(m => m.Leases.OwnedSessions().Where(l => l.State == LeaseState.Owned).Select(l => l.SessionId).Order(StringComparer.Ordinal)
                    .SequenceEqual(expected.SessionsOf(m.Leases.InstanceId).Order(StringComparer.Ordinal), StringComparer.Ordinal)),
                Deadline,
                what);
            Assert.All(ids, id => Assert.InRange(expected.SessionsOf(id).Count, _sessions.Length / ids.Length, expected.Capacity));
        }

        try
        {
            var a = await StartAsync("node-a");
            var b = await StartAsync("node-b");
            var c = await StartAsync("node-c");
            await SettledAsync([a, b, c], "3 instances settle");

            var d = await StartAsync("node-d");
            var e = await StartAsync("node-e");
            await SettledAsync([a, b, c, d, e], "5 instances settle after two joins");

            await b.Leases.StopAsync();
            await SettledAsync([a, c, d, e], "4 instances settle after a graceful leave");

            // Crash: the connection vanishes without a release; the others take over at the leases' expiry.
            await c.Redis.CloseAsync(allowCommandsToComplete: false);
            await SettledAsync([a, d, e], "3 instances settle after a crash");

            var f = await StartAsync("node-f");
            await SettledAsync([a, d, e, f], "4 instances settle after a rejoin");
        }
        finally
        {
            foreach (var m in Live())
            {
                await m.Leases.DisposeAsync();
                await m.Redis.DisposeAsync();
            }
        }

        // Ownership windows from the events: an Acquired event is stamped after Redis granted the lease; a
        // Released, Uncertain or Lost one when the holder stopped counting it as owned (before Redis forgets it).
        foreach (var group in events.Where(e => e.Kind != LeaseEventKind.Renewed).GroupBy(e => e.SessionId))
        {
            var windows = group.Where(e => e.Kind == LeaseEventKind.Acquired)
                .Select(acq => (acq.InstanceId, acq.Token, Start: acq.Timestamp, End: group
                    .Where(e => e.InstanceId == acq.InstanceId && e.Token == acq.Token && e.Kind is LeaseEventKind.Released or LeaseEventKind.Uncertain or LeaseEventKind.Lost)
                    .Select(e => e.Timestamp).DefaultIfEmpty(DateTimeOffset.MaxValue).Min()))
                .OrderBy(w => w.Token)
                .ToList();
            for (var i = 1; i < windows.Count; i++)
            {
                var (prev, next) = (windows[i - 1], windows[i]);
                Assert.True(next.Token > prev.Token, $"{group.Key}: token {next.Token} of {next.InstanceId} repeats {prev.InstanceId}'s");
                Assert.True(prev.End <= next.Start, $"{group.Key}: {prev.InstanceId} (token {prev.Token}) owned it until {prev.End:O}, {next.InstanceId} (token {next.Token}) from {next.Start:O}");
            }
        }
    }
}

public sealed class BalancedFleetTests_RedisServer(RedisServerFixture f) : BalancedFleetTests(f), IClassFixture<RedisServerFixture>;

public sealed class BalancedFleetTests_Garnet(GarnetFixture f) : BalancedFleetTests(f), IClassFixture<GarnetFixture>;
