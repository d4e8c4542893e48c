using PollLease.Coordination;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.Tests.Coordination;

/// <summary>
/// Builds lease managers with scaled-down timings, each on its own connection like a real instance. The timings
/// leave room for a loaded 2-core machine: a cycle may take a second or more there, so the operation timeout is
/// 2 s and a lease stays locally valid for 2.5 s after the send time of its last renew.
/// </summary>
internal static class LeaseTestHost
{
    public static PollLeaseOptions FastOptions(string prefix, string? instanceId = null) => new()
    {
        KeyPrefix = prefix,
        InstanceId = instanceId,
        LeaseTtl = TimeSpan.FromSeconds(3),
        RenewInterval = TimeSpan.FromMilliseconds(500),
        RetryInterval = TimeSpan.FromMilliseconds(100),
        HeartbeatTtl = TimeSpan.FromSeconds(3),
        HeartbeatInterval = TimeSpan.FromMilliseconds(500),
        SafetyMargin = TimeSpan.FromMilliseconds(500),
        OperationTimeout = TimeSpan.FromSeconds(2),
        ShutdownTimeout = TimeSpan.FromSeconds(3),
    };

    public static string[] Sessions(int count) => Enumerable.Range(0, count).Select(i => $"session-{i:D6}").ToArray();

    /// <summary>Active sessions with these ids, for <see cref="StaticSessionSource.Set"/>.</summary>
    public static IEnumerable<PollSession> Records(IEnumerable<string> ids) =>
        ids.Select(id => new PollSession(id, "record", StaticSessionSource.DefaultInterval, false, new Dictionary<string, string>()));

    /// <summary>
    /// A lease manager on a fleet the test has just created: the prefix is new, so no instance can hold a lease under
    /// it, and its first epoch starts with no quarantine (<see cref="DataLossGuard.EstablishNewFleetAsync"/>). Tests
    /// of a loss create their managers after it without this.
    /// </summary>
    public static LeaseManager Create(IConnectionMultiplexer redis, PollLeaseOptions options, ISessionSource sessions, TimeProvider? time = null)
    {
        NewFleetAsync(redis, options.KeyPrefix).GetAwaiter().GetResult();
        return new(redis, options, sessions, time);
    }

    /// <summary>Starts the first epoch of a fleet the test has just made up (a new prefix): no quarantine at its first start.</summary>
    public static Task NewFleetAsync(IConnectionMultiplexer redis, string prefix) =>
        DataLossGuard.EstablishNewFleetAsync(redis.GetDatabase(), new RedisKeys(prefix));
}
