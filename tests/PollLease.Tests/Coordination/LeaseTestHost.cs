using PollLease.Coordination;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.Tests.Coordination;

/// <summary>Builds lease managers with scaled-down timings, each on its own connection like a real instance.</summary>
internal static class LeaseTestHost
{
    public static PollLeaseOptions FastOptions(string prefix, string? instanceId = null) => new()
    {
        KeyPrefix = prefix,
        InstanceId = instanceId,
        LeaseTtl = TimeSpan.FromMilliseconds(1500),
        RenewInterval = TimeSpan.FromMilliseconds(300),
        RetryInterval = TimeSpan.FromMilliseconds(100),
        HeartbeatTtl = TimeSpan.FromMilliseconds(1500),
        HeartbeatInterval = TimeSpan.FromMilliseconds(300),
        SafetyMargin = TimeSpan.FromMilliseconds(300),
        OperationTimeout = TimeSpan.FromMilliseconds(800),
        ShutdownTimeout = TimeSpan.FromSeconds(3),
    };

    public static string[] Sessions(int count) => Enumerable.Range(0, count).Select(i => $"session-{i:D6}").ToArray();

    /// <summary>
    /// A lease manager on a fleet the test has just created: the prefix is new, so no instance can hold a lease under
    /// it, and its first epoch starts with no quarantine (<see cref="DataLossGuard.EstablishNewFleetAsync"/>). Tests
    /// of a loss create their managers after it without this.
    /// </summary>
    public static LeaseManager Create(IConnectionMultiplexer redis, PollLeaseOptions options, ISessionDirectory sessions, TimeProvider? time = null)
    {
        NewFleetAsync(redis, options.KeyPrefix).GetAwaiter().GetResult();
        return new(redis, options, sessions, time);
    }

    /// <summary>Starts the first epoch of a fleet the test has just made up (a new prefix): no quarantine at its first start.</summary>
    public static Task NewFleetAsync(IConnectionMultiplexer redis, string prefix) =>
        DataLossGuard.EstablishNewFleetAsync(redis.GetDatabase(), new RedisKeys(prefix));
}
