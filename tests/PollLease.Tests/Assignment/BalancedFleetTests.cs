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
            var leases = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, id), StaticSessionSource.FromIds(_sessions));
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

        OwnershipHistory.AssertNoTwoOwners(events);
        OwnershipHistory.AssertAtMostTwoAcquisitionsPerTtl(events, LeaseTestHost.FastOptions(_prefix).LeaseTtl);
    }
}

public sealed class BalancedFleetTests_RedisServer(RedisServerFixture f) : BalancedFleetTests(f), IClassFixture<RedisServerFixture>;

public sealed class BalancedFleetTests_Garnet(GarnetFixture f) : BalancedFleetTests(f), IClassFixture<GarnetFixture>;
