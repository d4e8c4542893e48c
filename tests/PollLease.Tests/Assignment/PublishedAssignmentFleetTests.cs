using PollLease.Assignment;
using PollLease.Coordination;
using PollLease.Election;
using PollLease.Fleet;
using PollLease.Sessions;
using PollLease.Tests.Coordination;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;
using static PollLease.Tests.Election.ElectionTestKit;

namespace PollLease.Tests.Assignment;

/// <summary>
/// The fleet following the janitor's published assignment on real Redis: a join moves only the newcomer's share and
/// a leave only the leaver's sessions, every instance computes the same owners, and a malformed published value is
/// ignored.
/// </summary>
public abstract class PublishedAssignmentFleetTests(RedisFixture fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly string[] _sessions = LeaseTestHost.Sessions(40);

    [Fact]
    public async Task A_join_moves_only_the_newcomers_share_and_a_leave_only_the_leavers_sessions()
    {
        var sessions = StaticSessionSource.FromIds(_sessions);
        var members = new List<(LeaseManager Leases, IConnectionMultiplexer Redis)>();
        var store = new AssignmentStore(fixture.Redis, new RedisKeys(_prefix));
        await using var janitor = new FleetJanitor(fixture.Redis, _prefix, "node-a", TimeSpan.FromSeconds(1.5), new JanitorOptions
        {
            Interval = TimeSpan.FromMilliseconds(200),
            ScanPageSize = 10,
            CleanOrphans = false,
            Election = Options(_prefix, "node-a"),
        });
        janitor.PublishAssignments(sessions, 0);

        async Task StartAsync(string id)
        {
            var redis = await fixture.ConnectAsync();
            var leases = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, id), sessions);
            members.Add((leases, redis));
            await leases.StartAsync();
        }

        // The instances are read one after another, so a handover between two reads can show a session under both
        // (or neither): such a snapshot is not settled, and the caller reads again.
        Dictionary<string, string>? Owners()
        {
            var pairs = members
                .SelectMany(m => m.Leases.OwnedSessions().Where(l => l.State == LeaseState.Owned).Select(l => (l.SessionId, m.Leases.InstanceId)))
                .ToList();
            return pairs.Select(p => p.SessionId).Distinct(StringComparer.Ordinal).Count() == pairs.Count
                ? pairs.ToDictionary(x => x.SessionId, x => x.InstanceId, StringComparer.Ordinal)
                : null;
        }

        // Settled: the janitor published the assignment of exactly these instances, and they hold exactly it.
        async Task<Dictionary<string, string>> SettledAsync(string what)
        {
            var ids = members.Select(m => m.Leases.InstanceId).ToHashSet(StringComparer.Ordinal);
            Dictionary<string, string> owners = [];
            await Eventually.TrueAsync(async () =>
            {
                var (_, published, _) = await store.ReadAsync(CancellationToken.None);
                var snapshot = Owners();
                if (snapshot is null)
                {
                    return false;
                }
                owners = snapshot;
                return published is not null
                    && published.Owners.Count == _sessions.Length
                    && published.Owners.Values.All(ids.Contains)
                    && ids.All(published.Owners.Values.Contains)
                    && owners.Count == _sessions.Length
                    && _sessions.All(s => owners[s] == published.Owners[s]);
            }, Deadline, what);
            var counts = owners.Values.GroupBy(v => v).Select(g => g.Count()).ToList();
            Assert.InRange(counts.Max() - counts.Min(), 0, 1);
            return owners;
        }

        try
        {
            await janitor.StartAsync();
            await StartAsync("node-a");
            await StartAsync("node-b");
            await StartAsync("node-c");
            var three = await SettledAsync("3 instances follow the published assignment");

            await StartAsync("node-d");
            var four = await SettledAsync("4 instances after a join");
            var movedOnJoin = _sessions.Where(s => three[s] != four[s]).ToList();
            Assert.All(movedOnJoin, s => Assert.Equal("node-d", four[s]));
            Assert.Equal(_sessions.Length / 4, movedOnJoin.Count);

            var leaver = members.Single(m => m.Leases.InstanceId == "node-b");
            await leaver.Leases.StopAsync();
            members.Remove(leaver);
            await leaver.Leases.DisposeAsync();
            await leaver.Redis.DisposeAsync();
            var three2 = await SettledAsync("3 instances after a leave");
            var movedOnLeave = _sessions.Where(s => four[s] != three2[s]).ToList();
            Assert.Equal(_sessions.Where(s => four[s] == "node-b").Order(StringComparer.Ordinal), movedOnLeave.Order(StringComparer.Ordinal));
        }
        finally
        {
            foreach (var (leases, redis) in members)
            {
                await leases.DisposeAsync();
                await redis.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_malformed_published_assignment_is_ignored_and_the_instance_plans_from_the_live_set()
    {
        var keys = new RedisKeys(_prefix);
        var db = fixture.Redis.GetDatabase();
        await db.StringSetAsync(keys.Assignment, "{\"nodes\":[\"node-a\"],\"owners\":{\"session-000000\":7}}");
        await db.StringSetAsync(keys.AssignmentVersion, 1);
        var redis = await fixture.ConnectAsync();
        await using var leases = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), StaticSessionSource.FromIds(_sessions[..5]));
        try
        {
            await leases.StartAsync();
            await Eventually.TrueAsync(() => leases.OwnedSessions().Count == 5, Deadline, "the instance owns every session");
        }
        finally
        {
            await leases.StopAsync();
            await redis.DisposeAsync();
        }
    }
}

public sealed class PublishedAssignmentFleetTests_RedisServer(RedisServerFixture f) : PublishedAssignmentFleetTests(f), IClassFixture<RedisServerFixture>;

public sealed class PublishedAssignmentFleetTests_Garnet(GarnetFixture f) : PublishedAssignmentFleetTests(f), IClassFixture<GarnetFixture>;
