using System.Collections.Concurrent;
using System.Net;
using PollLease.Assignment;
using PollLease.ChaosTests.Harness;
using PollLease.Coordination;
using PollLease.Election;
using PollLease.Fleet;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Assignment;

/// <summary>
/// Steady ownership on real Redis, with the janitor publishing the assignment as in production: a crashed
/// instance's sessions move once, straight to their owners in the assignment without it; an instance that is cut
/// off (or slowed) while still registered gets no hand-offs it cannot take, and nothing flaps.
/// </summary>
public abstract class SteadyOwnershipFleetTests(RedisFixture fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(40);
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly string[] _sessions = Enumerable.Range(0, 40).Select(i => $"session-{i:D6}").ToArray();

    /// <summary>Timings a loaded 2-core machine keeps to: a healthy instance never looks stale (2 s without a heartbeat).</summary>
    private PollLeaseOptions Options(string id, TimeSpan heartbeatTtl) => new()
    {
        KeyPrefix = _prefix,
        InstanceId = id,
        LeaseTtl = TimeSpan.FromSeconds(3),
        RenewInterval = TimeSpan.FromMilliseconds(500),
        RetryInterval = TimeSpan.FromMilliseconds(200),
        HeartbeatTtl = heartbeatTtl,
        HeartbeatInterval = TimeSpan.FromMilliseconds(500),
        SafetyMargin = TimeSpan.FromMilliseconds(500),
        OperationTimeout = TimeSpan.FromMilliseconds(1500),
        ShutdownTimeout = TimeSpan.FromSeconds(3),
    };

    private sealed class Fleet(RedisFixture fixture, string prefix, string[] sessions) : IAsyncDisposable
    {
        private readonly List<(LeaseManager Leases, IConnectionMultiplexer Redis)> _members = [];
        private readonly AssignmentStore _store = new(fixture.Redis, new RedisKeys(prefix));

        public ConcurrentQueue<LeaseEvent> Events { get; } = new();

        public StaticSessionSource Directory { get; } = StaticSessionSource.FromIds(sessions);

        public IConnectionMultiplexer RedisOf(string id) => _members.Single(m => m.Leases.InstanceId == id).Redis;

        public async Task StartAsync(PollLeaseOptions options, string? connectionString = null)
        {
            var redis = await fixture.ConnectAsync(connectionString);
            var leases = new LeaseManager(redis, options, Directory);
            leases.LeaseChanged += (_, e) => Events.Enqueue(e);
            _members.Add((leases, redis));
            await leases.StartAsync();
        }

        public Dictionary<string, string> Owners() => _members
            .SelectMany(m => m.Leases.OwnedSessions().Where(l => l.State == LeaseState.Owned).Select(l => (l.SessionId, m.Leases.InstanceId)))
            .ToDictionary(x => x.SessionId, x => x.InstanceId, StringComparer.Ordinal);

        /// <summary>Settled: the janitor published the assignment of exactly <paramref name="ids"/>, and they hold exactly it.</summary>
        public async Task<Dictionary<string, string>> SettledAsync(string[] ids, string what)
        {
            Dictionary<string, string> owners = [];
            await Eventually.TrueAsync(async () =>
            {
                var (_, published, _) = await _store.ReadAsync(CancellationToken.None);
                owners = Owners();
                return published is not null
                    && published.Owners.Count == sessions.Length
                    && published.Owners.Values.ToHashSet().SetEquals(ids)
                    && owners.Count == sessions.Length
                    && sessions.All(s => owners[s] == published.Owners[s]);
            }, Deadline, what);
            return owners;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var (leases, redis) in _members)
            {
                await leases.DisposeAsync();
                await redis.DisposeAsync();
            }
        }
    }

    private static ElectionOptions ElectionOptions(string prefix, string id) => PollLease.Tests.Election.ElectionTestKit.Options(prefix, id);

    private async Task<FleetJanitor> JanitorAsync(Fleet fleet, TimeSpan heartbeatTtl)
    {
        var janitor = new FleetJanitor(fixture.Redis, _prefix, "janitor", heartbeatTtl, new JanitorOptions
        {
            Interval = TimeSpan.FromMilliseconds(200),
            ScanPageSize = 10,
            CleanOrphans = false,
            Election = ElectionOptions(_prefix, "janitor"),
        });
        janitor.PublishAssignments(fleet.Directory, 0);
        await janitor.StartAsync();
        return janitor;
    }

    private static List<LeaseEvent> Since(Fleet fleet, DateTimeOffset from, LeaseEventKind kind) =>
        fleet.Events.Where(e => e.Timestamp >= from && e.Kind == kind).ToList();

    [Fact]
    public async Task A_crashed_instances_sessions_move_once_straight_to_their_owners_in_the_assignment_without_it()
    {
        var heartbeatTtl = TimeSpan.FromSeconds(3);
        await using var fleet = new Fleet(fixture, _prefix, _sessions);
        await using var janitor = await JanitorAsync(fleet, heartbeatTtl);
        string[] ids = ["node-a", "node-b", "node-c", "node-d"];
        foreach (var id in ids)
        {
            await fleet.StartAsync(Options(id, heartbeatTtl));
        }
        var four = await fleet.SettledAsync(ids, "4 instances follow the published assignment");

        // Crash: the connection vanishes without a release or deregistration.
        var crash = DateTimeOffset.UtcNow;
        await fleet.RedisOf("node-c").CloseAsync(allowCommandsToComplete: false);
        var three = await fleet.SettledAsync(["node-a", "node-b", "node-d"], "3 instances after the crash");

        var orphans = _sessions.Where(s => four[s] == "node-c").Order(StringComparer.Ordinal).ToList();
        var acquired = Since(fleet, crash, LeaseEventKind.Acquired).Where(e => e.InstanceId != "node-c").ToList();
        // Each orphan was acquired exactly once, by its owner in the final assignment; nothing else moved.
        Assert.Equal(orphans, acquired.Select(e => e.SessionId).Order(StringComparer.Ordinal));
        Assert.All(acquired, e => Assert.Equal(three[e.SessionId], e.InstanceId));
        Assert.DoesNotContain(Since(fleet, crash, LeaseEventKind.Released), e => e.InstanceId != "node-c");
        Assert.All(_sessions.Except(orphans), s => Assert.Equal(four[s], three[s]));
        OwnershipHistory.AssertNoTwoOwners(fleet.Events);
        OwnershipHistory.AssertAtMostTwoAcquisitionsPerTtl(fleet.Events, Options("x", heartbeatTtl).LeaseTtl);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_preferred_owner_cut_off_but_still_registered_gets_no_hand_offs_and_nothing_flaps(bool slowed)
    {
        // The registry keeps the cut-off instance for 20 s: long after its leases expired it is still a live member.
        var heartbeatTtl = TimeSpan.FromSeconds(20);
        var ttl = Options("x", heartbeatTtl).LeaseTtl;
        var endpoint = ConfigurationOptions.Parse(fixture.ConnectionString).EndPoints[0];
        var port = endpoint is IPEndPoint ip ? ip.Port : ((DnsEndPoint)endpoint).Port;
        await using var proxy = new TcpProxy(port);
        await using var fleet = new Fleet(fixture, _prefix, _sessions);
        await using var janitor = await JanitorAsync(fleet, heartbeatTtl);
        string[] ids = ["node-a", "node-b", "node-c", "node-d"];
        foreach (var id in ids)
        {
            await fleet.StartAsync(Options(id, heartbeatTtl), id == "node-c" ? proxy.ConnectionString : null);
        }
        var four = await fleet.SettledAsync(ids, "4 instances follow the published assignment");
        var mine = _sessions.Where(s => four[s] == "node-c").ToList();

        var cut = DateTimeOffset.UtcNow;
        if (slowed)
        {
            // Every chunk held longer than the operation timeout: node-c's cycles all time out, late.
            proxy.Delay(TimeSpan.FromSeconds(2));
        }
        else
        {
            proxy.Blackhole();
        }
        await Eventually.TrueAsync(() => fleet.Owners() is var o && mine.All(s => o.TryGetValue(s, out var by) && by != "node-c"), Deadline, "the others take node-c's sessions");
        var taken = fleet.Owners();
        // Two more lease TTLs cut off: the others keep what they took, hand nothing to node-c and nothing moves.
        var quiet = DateTimeOffset.UtcNow;
        await Eventually.TrueAsync(() => DateTimeOffset.UtcNow - quiet > 2 * ttl, Deadline, "two lease TTLs pass");
        var during = fleet.Events.Where(e => e.Timestamp >= cut && e.InstanceId != "node-c").ToList();
        Assert.DoesNotContain(during, e => e.Kind == LeaseEventKind.Released);
        Assert.Equal(mine.Order(StringComparer.Ordinal), during.Where(e => e.Kind == LeaseEventKind.Acquired).Select(e => e.SessionId).Order(StringComparer.Ordinal));
        Assert.Equal(taken, fleet.Owners());

        // The link heals: node-c gets a share again (its old one while the registry kept it live; a newcomer's share
        // if its heartbeat lapsed meanwhile), each of those sessions moving once, and nothing else moving.
        var healed = DateTimeOffset.UtcNow;
        proxy.Heal();
        var again = await fleet.SettledAsync(ids, "node-c back");
        var returned = Since(fleet, healed, LeaseEventKind.Acquired);
        Assert.All(returned, e => Assert.Equal("node-c", e.InstanceId));
        Assert.Equal(again.Where(kv => kv.Value == "node-c").Select(kv => kv.Key).Order(StringComparer.Ordinal), returned.Select(e => e.SessionId).Order(StringComparer.Ordinal));
        Assert.All(_sessions.Where(s => again[s] != "node-c"), s => Assert.Equal(taken[s], again[s]));
        OwnershipHistory.AssertNoTwoOwners(fleet.Events);
        OwnershipHistory.AssertAtMostTwoAcquisitionsPerTtl(fleet.Events, ttl);
    }
}

public sealed class SteadyOwnershipFleetTests_RedisServer(RedisServerFixture f) : SteadyOwnershipFleetTests(f), IClassFixture<RedisServerFixture>;

public sealed class SteadyOwnershipFleetTests_Garnet(GarnetFixture f) : SteadyOwnershipFleetTests(f), IClassFixture<GarnetFixture>;
