using PollLease.Election;
using StackExchange.Redis;

namespace PollLease.Tests.Election;

/// <summary>Options, a fenced write and helpers shared by the election tests.</summary>
internal static class ElectionTestKit
{
    /// <summary>A fenced write: accepted when the token is not older than the newest one accepted; KEYS: fence, ARGV: token.</summary>
    private const string FencedWriteScript = """
        local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
        local tok = tonumber(ARGV[1])
        if tok < cur then return 0 end
        redis.call('SET', KEYS[1], ARGV[1])
        return 1
        """;

    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    /// <summary>Timings roomy enough that a loaded machine does not demote a healthy leader.</summary>
    public static ElectionOptions Options(string prefix, string instance, string role = "test") => new()
    {
        KeyPrefix = prefix,
        Role = role,
        InstanceId = instance,
        Ttl = TimeSpan.FromSeconds(3),
        RenewInterval = TimeSpan.FromMilliseconds(200),
        RenewDeadline = TimeSpan.FromSeconds(2),
        RetryPeriod = TimeSpan.FromMilliseconds(300),
        OperationTimeout = TimeSpan.FromSeconds(1),
        DisconnectGracePeriod = TimeSpan.FromMilliseconds(500),
        ValidationInterval = TimeSpan.FromMilliseconds(500),
        MaxBackoff = TimeSpan.FromSeconds(1),
        CircuitBreakDuration = TimeSpan.FromMilliseconds(500),
        CallbackTimeout = TimeSpan.FromSeconds(1),
        HealthCheckFailureThreshold = 2,
    };

    /// <summary>Short timings for takeover tests: a 1 s key, a leader that gives up 400 ms before it expires.</summary>
    public static ElectionOptions Fast(string prefix, string instance, string role = "test") => new()
    {
        KeyPrefix = prefix,
        Role = role,
        InstanceId = instance,
        Ttl = TimeSpan.FromSeconds(1),
        RenewInterval = TimeSpan.FromMilliseconds(100),
        RenewDeadline = TimeSpan.FromMilliseconds(600),
        RetryPeriod = TimeSpan.FromMilliseconds(200),
        OperationTimeout = TimeSpan.FromMilliseconds(400),
        DisconnectGracePeriod = TimeSpan.FromMilliseconds(300),
        ValidationInterval = TimeSpan.FromMilliseconds(300),
        MaxBackoff = TimeSpan.FromSeconds(1),
        CircuitBreakDuration = TimeSpan.FromMilliseconds(300),
        CallbackTimeout = TimeSpan.FromSeconds(1),
    };

    public static string LeaderKey(string prefix, string role = "test") => $"{{{prefix}}}:leader:{role}";

    /// <summary>Writes under <paramref name="token"/> to the resource fenced by <paramref name="fenceKey"/>; false when a newer token wrote first.</summary>
    public static async Task<bool> FencedWriteAsync(IConnectionMultiplexer redis, string fenceKey, long token) =>
        (long)await redis.GetDatabase().ScriptEvaluateAsync(FencedWriteScript, [fenceKey], [token]) == 1;
}
