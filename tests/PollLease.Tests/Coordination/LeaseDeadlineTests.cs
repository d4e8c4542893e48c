using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;

namespace PollLease.Tests.Coordination;

/// <summary>The validity deadline on a fake clock: exact to the tick, against a real server that goes away.</summary>
public abstract class LeaseDeadlineTests(RedisFixture fixture)
{
    [Fact]
    public async Task A_failed_renew_makes_the_lease_uncertain_and_the_deadline_makes_it_lost_never_owned_after()
    {
        var prefix = RedisFixture.NewPrefix();
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20_000));
        var options = LeaseTestHost.FastOptions(prefix, "node-a");
        await using var server = await fixture.StartDedicatedAsync();
        await using var redis = await fixture.ConnectAsync(server.ConnectionString);
        await using var a = LeaseTestHost.Create(redis, options, StaticSessionSource.FromIds(["s1"]), time);
        var events = new ConcurrentQueue<LeaseEvent>();
        a.LeaseChanged += (_, e) => events.Enqueue(e);

        Assert.True((await a.RunCycleAsync()).Succeeded);
        Assert.True(a.TryGetLease("s1", out var lease));
        Assert.Equal(options.LeaseTtl - options.SafetyMargin, lease.ValidFor);
        var token = lease.Token;

        await server.StopAsync();
        time.Advance(options.RenewInterval);
        Assert.False((await a.RunCycleAsync()).Succeeded);
        Assert.Equal(LeaseState.Uncertain, a.GetState("s1"));
        Assert.False(a.IsOwned("s1"));
        Assert.Single(a.OwnedSessions());
        Assert.Contains(events, e => e.Kind == LeaseEventKind.Uncertain && e.Reason == LeaseReasons.RenewFailed);

        time.Advance(options.LeaseTtl - options.SafetyMargin - options.RenewInterval - TimeSpan.FromTicks(1));
        Assert.Equal(LeaseState.Uncertain, a.GetState("s1"));
        time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(LeaseState.Lost, a.GetState("s1"));
        Assert.False(a.IsOwned("s1"));
        Assert.Empty(a.OwnedSessions());

        Assert.False((await a.RunCycleAsync()).Succeeded);
        var lost = Assert.Single(events, e => e.Kind == LeaseEventKind.Lost);
        Assert.Equal(LeaseReasons.Deadline, lost.Reason);
        Assert.Equal(LeaseState.None, a.GetState("s1"));

        await server.StartAsync();
        await Eventually.TrueAsync(async () => (await a.RunCycleAsync()).Succeeded && a.IsOwned("s1"), TimeSpan.FromSeconds(20), "re-acquired after Redis returns");
        Assert.True(a.TryGetLease("s1", out var again));
        Assert.True(again.Token > token);
    }
}

public sealed class LeaseDeadlineTests_RedisServer(RedisServerFixture f) : LeaseDeadlineTests(f), IClassFixture<RedisServerFixture>;

public sealed class LeaseDeadlineTests_Garnet(GarnetFixture f) : LeaseDeadlineTests(f), IClassFixture<GarnetFixture>;
