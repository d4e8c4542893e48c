using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Tests.Coordination;
using PollLease.Tests.Infrastructure;

namespace PollLease.Tests.Sessions;

public abstract class SessionCatalogTests(RedisFixture fixture)
{
    private readonly string _prefix = RedisFixture.NewPrefix();

    private string VersionKey => $"{{{_prefix}}}:sessions:version";

    [Fact]
    public async Task Add_get_list_update_pause_resume_remove_and_each_change_bumps_the_version()
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix, TimeSpan.FromSeconds(15));
        var db = fixture.Redis.GetDatabase();

        var added = await catalog.AddAsync("orders-eu", "https://example.com/orders", metadata: new Dictionary<string, string> { ["team"] = "a" });
        await catalog.AddAsync("orders-us", "opaque:us", TimeSpan.FromSeconds(60));
        Assert.Equal(TimeSpan.FromSeconds(15), added.Interval);
        Assert.Equal("2", (string?)await db.StringGetAsync(VersionKey));

        var got = await catalog.GetAsync("orders-eu");
        Assert.NotNull(got);
        Assert.Equal("https://example.com/orders", got.Target);
        Assert.Equal("a", got.Metadata["team"]);
        Assert.Null(await catalog.GetAsync("missing"));
        Assert.Equal(["orders-eu", "orders-us"], (await catalog.ListAsync()).Select(s => s.Id));

        await catalog.UpdateAsync(got with { Interval = TimeSpan.FromSeconds(4) });
        Assert.Equal(TimeSpan.FromSeconds(4), (await catalog.GetAsync("orders-eu"))!.Interval);

        await catalog.PauseAsync("orders-us");
        var version = (string?)await db.StringGetAsync(VersionKey);
        Assert.True((await catalog.GetAsync("orders-us"))!.Paused);
        var sessions = await catalog.GetSessionsAsync(version!, CancellationToken.None);
        Assert.Equal(["orders-eu", "orders-us"], sessions.Keys.Order(StringComparer.Ordinal));
        Assert.True(sessions["orders-us"].Paused);
        Assert.Same(sessions, await catalog.GetSessionsAsync(version!, CancellationToken.None));

        await catalog.ResumeAsync("orders-us");
        Assert.False((await catalog.GetAsync("orders-us"))!.Paused);

        Assert.True(await catalog.RemoveAsync("orders-us"));
        Assert.False(await catalog.RemoveAsync("orders-us"));
        Assert.Equal(["orders-eu"], (await catalog.ListAsync()).Select(s => s.Id));
        Assert.Equal("6", (string?)await db.StringGetAsync(VersionKey));
    }

    [Fact]
    public async Task Duplicates_and_missing_sessions_fail_clearly()
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        await catalog.AddAsync("s1", "t");

        var duplicate = await Assert.ThrowsAsync<InvalidOperationException>(() => catalog.AddAsync("s1", "t"));
        Assert.Contains("'s1' already exists", duplicate.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<KeyNotFoundException>(() => catalog.UpdateAsync(new PollSession("nope", "t", TimeSpan.FromSeconds(5), false, new Dictionary<string, string>())));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => catalog.PauseAsync("nope"));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => catalog.ResumeAsync("nope"));
    }

    public static TheoryData<string> BadIds() => new() { "", "a{b}", "a}b", "a:b", "sp ace", "tab\t", "nl\n", "ctl\u0001", new string('x', 10 * 1024), "a|b" };

    [Theory]
    [MemberData(nameof(BadIds))]
    public async Task Bad_ids_are_refused_before_anything_reaches_redis(string id)
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => catalog.AddAsync(id, "target"));
        Assert.Contains("id", e.Message, StringComparison.Ordinal);
        Assert.Empty(await catalog.ListAsync());
    }

    [Theory]
    [InlineData(3.999)]
    [InlineData(120.001)]
    [InlineData(0)]
    [InlineData(-5)]
    public async Task Intervals_outside_four_to_120_seconds_are_refused(double seconds)
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => catalog.AddAsync("s1", "t", TimeSpan.FromSeconds(seconds)));
        Assert.Contains("must be between 4 and 120 s", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Targets_and_metadata_are_validated()
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        await Assert.ThrowsAsync<ArgumentException>(() => catalog.AddAsync("s1", ""));
        await Assert.ThrowsAsync<ArgumentException>(() => catalog.AddAsync("s1", "line\nbreak"));
        await Assert.ThrowsAsync<ArgumentException>(() => catalog.AddAsync("s1", new string('t', SessionCatalog.MaxTargetLength + 1)));
        var tooMany = Enumerable.Range(0, 33).ToDictionary(i => $"k{i}", i => "v");
        var e = await Assert.ThrowsAsync<ArgumentException>(() => catalog.AddAsync("s1", "t", metadata: tooMany));
        Assert.Contains("metadata of session 's1' is invalid", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_hashes_written_directly_are_skipped_and_logged()
    {
        var collector = new FakeLogCollector();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(collector)));
        var catalog = new SessionCatalog(fixture.Redis, _prefix, loggerFactory: loggers);
        await catalog.AddAsync("good", "t");
        var db = fixture.Redis.GetDatabase();
        await db.SetAddAsync($"{{{_prefix}}}:sessions", ["no-interval", "bad-interval", "bad-meta", "gone", "bad:id"]);
        await db.HashSetAsync($"{{{_prefix}}}:session:no-interval", "target", "t");
        await db.HashSetAsync($"{{{_prefix}}}:session:bad-interval", [new("target", "t"), new("interval_ms", "999999")]);
        await db.HashSetAsync($"{{{_prefix}}}:session:bad-meta", [new("target", "t"), new("interval_ms", "5000"), new("metadata", "[1,2]")]);

        var sessions = await catalog.ListAsync();

        Assert.Equal(["good"], sessions.Select(s => s.Id));
        var warnings = collector.GetSnapshot().Where(r => r.Level == LogLevel.Warning).Select(r => r.Message).ToList();
        Assert.Contains(warnings, w => w.Contains("session=no-interval", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("session=bad-interval", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("session=bad-meta", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("session=bad:id", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Paused_and_removed_sessions_lose_their_leases_within_a_cycle()
    {
        await using var redis = await fixture.ConnectAsync();
        var catalog = new SessionCatalog(redis, _prefix);
        foreach (var id in new[] { "s1", "s2", "s3" })
        {
            await catalog.AddAsync(id, "t", TimeSpan.FromSeconds(5));
        }
        await using var leases = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), catalog);
        var released = new List<LeaseEvent>();
        leases.LeaseChanged += (_, e) => { if (e.Kind == LeaseEventKind.Released) { released.Add(e); } };
        await leases.RunCycleAsync();
        Assert.Equal(3, leases.OwnedSessions().Count);

        await catalog.PauseAsync("s1");
        await catalog.RemoveAsync("s2");
        await leases.RunCycleAsync(); // reads the new catalog version
        await leases.RunCycleAsync(); // plans with the new catalog

        Assert.Equal(["s3"], leases.OwnedSessions().Select(l => l.SessionId));
        Assert.Equal(["s1", "s2"], released.Select(e => e.SessionId).Order(StringComparer.Ordinal));
        Assert.All(released, e => Assert.Equal(LeaseReasons.Inactive, e.Reason));
    }

    [Fact]
    public async Task Fleet_status_shows_owners_tokens_and_ttls_and_does_not_count_paused_sessions_as_unowned()
    {
        await using var redis = await fixture.ConnectAsync();
        var catalog = new SessionCatalog(redis, _prefix);
        foreach (var id in new[] { "s1", "s2", "s3" })
        {
            await catalog.AddAsync(id, "t", TimeSpan.FromSeconds(5));
        }
        await catalog.PauseAsync("s3");
        await using var leases = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), catalog);
        await leases.RunCycleAsync();

        var status = await new FleetStatusReader(fixture.Redis, _prefix).ReadAsync();

        Assert.Equal(1, status.LiveCount);
        Assert.Equal(2, status.ActiveCount);
        Assert.Empty(status.Unowned);
        Assert.Equal(2, status.Ideal);
        Assert.Equal(2, status.CountsByOwner["node-a"]);
        var s1 = status.Leases.Single(l => l.SessionId == "s1");
        Assert.Equal("node-a", s1.Owner);
        Assert.Equal(leases.OwnedSessions().Single(l => l.SessionId == "s1").Token, s1.Token);
        Assert.InRange(s1.LeaseExpiresIn!.Value, TimeSpan.FromMilliseconds(1), leases.Options.LeaseTtl);
        Assert.True(status.Leases.Single(l => l.SessionId == "s3").Paused);
    }
}

public sealed class SessionCatalogTests_RedisServer(RedisServerFixture f) : SessionCatalogTests(f), IClassFixture<RedisServerFixture>;

public sealed class SessionCatalogTests_Garnet(GarnetFixture f) : SessionCatalogTests(f), IClassFixture<GarnetFixture>;
