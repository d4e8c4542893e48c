using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Coordination;

public abstract class LeaseManagerTests(RedisFixture fixture)
{
    private readonly string _prefix = RedisFixture.NewPrefix();

    [Fact]
    public async Task One_instance_acquires_every_session()
    {
        var sessions = LeaseTestHost.Sessions(20);
        await using var redis = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(redis, LeaseTestHost.FastOptions(_prefix, "node-a"), new StaticSessionDirectory(sessions));

        var result = await a.RunCycleAsync();

        Assert.True(result.Succeeded);
        Assert.Equal(20, result.Acquired);
        Assert.All(sessions, s => Assert.True(a.IsOwned(s)));
        Assert.Equal(sessions, a.OwnedSessions().Select(l => l.SessionId));
        var value = await fixture.Redis.GetDatabase().StringGetAsync($"{{{_prefix}}}:lease:session-000003");
        Assert.StartsWith("node-a|", value.ToString(), StringComparison.Ordinal);
        Assert.Equal(["node-a"], a.LiveNodes);
    }

    [Fact]
    public async Task Second_instance_gets_nothing_while_the_first_holds_and_takes_over_after_release()
    {
        var sessions = LeaseTestHost.Sessions(5);
        await using var ra = await fixture.ConnectAsync();
        await using var rb = await fixture.ConnectAsync();
        await using var a = LeaseTestHost.Create(ra, LeaseTestHost.FastOptions(_prefix, "node-a"), new StaticSessionDirectory(sessions));
        await using var b = LeaseTestHost.Create(rb, LeaseTestHost.FastOptions(_prefix, "node-b"), new StaticSessionDirectory(sessions));

        await a.RunCycleAsync();
        var second = await b.RunCycleAsync();

        Assert.Equal(0, second.Acquired);
        Assert.Empty(b.OwnedSessions());
        var attempt = await b.TryAcquireAsync("session-000002");
        Assert.False(attempt.Acquired);
        Assert.Equal("node-a", attempt.Holder);

        Assert.True(await a.ReleaseAsync("session-000002"));
        Assert.False(a.IsOwned("session-000002"));
        var takeover = await b.TryAcquireAsync("session-000002");
        Assert.True(takeover.Acquired);
        Assert.True(b.IsOwned("session-000002"));
    }
}

public sealed class LeaseManagerTests_RedisServer(RedisServerFixture f) : LeaseManagerTests(f), IClassFixture<RedisServerFixture>;

public sealed class LeaseManagerTests_Garnet(GarnetFixture f) : LeaseManagerTests(f), IClassFixture<GarnetFixture>;
