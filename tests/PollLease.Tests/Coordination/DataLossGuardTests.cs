using Microsoft.Extensions.Time.Testing;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Coordination;

/// <summary>
/// Redis loses the fleet's data (FLUSHALL, a restart with no persistence) while an instance holds leases it still
/// counts as valid. An instance with no memory of the fleet (one that just started) must not acquire those
/// sessions until the old owner can no longer poll them. The instances share a fake clock, so the old owner's local
/// deadline does not run out while the test looks: only the server-side guard can keep the newcomer off.
/// </summary>
public abstract class DataLossGuardTests(RedisFixture fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
    private static readonly string[] Sessions = ["s1", "s2", "s3"];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task After_Redis_lost_its_data_a_newcomer_acquires_nothing_the_old_owner_may_still_poll(bool restartEmpty)
    {
        var prefix = RedisFixture.NewPrefix();
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20_000));
        await using var server = await fixture.StartDedicatedAsync();
        await using var redisA = await fixture.ConnectAsync(server.ConnectionString);
        await using var redisB = await fixture.ConnectAsync(server.ConnectionString);
        // A fleet on its first start: it cannot know it is new, so it waits one quarantine too.
        await using var a = new LeaseManager(redisA, LeaseTestHost.FastOptions(prefix, "node-a"), StaticSessionSource.FromIds(Sessions), time);
        await Eventually.TrueAsync(async () => (await a.RunCycleAsync()).Succeeded && Sessions.All(a.IsOwned), Deadline, "node-a holds every session");
        var oldTokens = a.OwnedSessions().ToDictionary(l => l.SessionId, l => l.Token);

        if (restartEmpty)
        {
            await server.RestartEmptyAsync();
        }
        else
        {
            await using var admin = await fixture.ConnectAsync(server.ConnectionString + ",allowAdmin=true");
            await admin.GetServers()[0].FlushAllDatabasesAsync();
        }

        // A newcomer starts: nothing in Redis says the sessions are held, and it remembers nothing.
        await using var b = new LeaseManager(redisB, LeaseTestHost.FastOptions(prefix, "node-b"), StaticSessionSource.FromIds(Sessions), time);
        await Eventually.TrueAsync(async () => (await b.RunCycleAsync()).Succeeded, Deadline, "node-b reaches Redis");
        for (var i = 0; i < 3; i++)
        {
            Assert.True((await b.RunCycleAsync()).Succeeded);
            Assert.All(Sessions, s => Assert.False(a.IsOwned(s) && b.IsOwned(s), $"{s} owned by node-a and node-b at once"));
        }

        // The old owner's next cycle tells it the leases are gone: it stops counting them as its own.
        await Eventually.TrueAsync(async () => (await a.RunCycleAsync()).Succeeded, Deadline, "node-a reaches Redis again");
        Assert.All(Sessions, s => Assert.False(a.IsOwned(s)));

        // Once nobody can still poll under the old leases, the sessions are taken again, under newer tokens.
        await Eventually.TrueAsync(async () => (await b.RunCycleAsync()).Succeeded && (await a.RunCycleAsync()).Succeeded
            && Sessions.All(s => a.IsOwned(s) ^ b.IsOwned(s)), Deadline, "every session owned again by exactly one instance");
        foreach (var lease in a.OwnedSessions().Concat(b.OwnedSessions()))
        {
            Assert.True(lease.Token > oldTokens[lease.SessionId], $"{lease.SessionId}: token {lease.Token} after {oldTokens[lease.SessionId]}");
        }
    }
}

public sealed class DataLossGuardTests_RedisServer(RedisServerFixture f) : DataLossGuardTests(f), IClassFixture<RedisServerFixture>;

public sealed class DataLossGuardTests_Garnet(GarnetFixture f) : DataLossGuardTests(f), IClassFixture<GarnetFixture>;
