using System.Diagnostics;
using PollLease.ChaosTests.Harness;
using PollLease.Coordination;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.ChaosTests;

/// <summary>
/// Found by the chaos suite: behind a link slower than the operation timeout, an instance's cycles timed out at
/// the client but still ran in Redis later, renewing and acquiring leases it never heard of, so its sessions
/// stayed leased and unpolled for as long as the link stayed slow. A call now carries the server time after
/// which it must do nothing.
/// </summary>
public sealed class SlowLinkTests : IClassFixture<ChaosServerFixture>
{
    [Fact]
    public async Task An_acquire_that_reaches_redis_after_its_caller_gave_up_changes_nothing()
    {
        await using var redis = await RedisChild.StartAsync();
        await using var proxy = new TcpProxy(redis.Port);
        await using var viaProxy = await ConnectionMultiplexer.ConnectAsync(proxy.ConnectionString + ",syncTimeout=10000,asyncTimeout=10000");
        await using var direct = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        var options = new PollLeaseOptions
        {
            KeyPrefix = "slow",
            InstanceId = "slow-1",
            LeaseTtl = TimeSpan.FromSeconds(3),
            RenewInterval = TimeSpan.FromSeconds(1),
            RetryInterval = TimeSpan.FromSeconds(1),
            HeartbeatTtl = TimeSpan.FromSeconds(3),
            HeartbeatInterval = TimeSpan.FromSeconds(1),
            SafetyMargin = TimeSpan.FromMilliseconds(300),
            OperationTimeout = TimeSpan.FromSeconds(1),
        };
        await using var leases = new LeaseManager(viaProxy, options, StaticSessionSource.FromIds(["fast", "late"]));

        // A prompt answer: the instance learns the server's time. A new fleet waits out one data-loss quarantine first
        // (a lease TTL), so the late call below is refused for being late, not for the quarantine.
        var quarantine = Stopwatch.StartNew();
        while (!(await leases.TryAcquireAsync("fast")).Acquired)
        {
            Assert.True(quarantine.Elapsed < TimeSpan.FromSeconds(20), "the first acquisition never came");
            await Task.Delay(100);
        }

        // Three times the operation timeout: the deadline the call carries is the server time learnt from the last
        // answer plus the local time since that call was sent, so it runs late by that call's own latency, which a
        // loaded machine can stretch to a good part of a second.
        proxy.Delay(TimeSpan.FromMilliseconds(3000));
        var replies = proxy.ChunksToClients;
        await Assert.ThrowsAsync<TimeoutException>(() => leases.TryAcquireAsync("late"));

        // The call still reaches Redis 3 s after it was sent, and its answer comes back through the proxy.
        var wait = Stopwatch.StartNew();
        while (proxy.ChunksToClients == replies)
        {
            Assert.True(wait.Elapsed < TimeSpan.FromSeconds(20), "the late call's answer never came back");
            await Task.Delay(20);
        }
        Assert.False(await direct.GetDatabase().KeyExistsAsync("{slow}:lease:late"), "a call its caller had given up on acquired a lease");
        Assert.False(await direct.GetDatabase().KeyExistsAsync("{slow}:fence:late"), "a call its caller had given up on issued a token");
    }
}
