using System.Globalization;
using PollLease.Coordination;
using StackExchange.Redis;

namespace PollLease.Election;

/// <summary>What an attempt to take the role found: this instance's new token, or the holder and how long its key lives.</summary>
internal readonly record struct AcquireReply(bool Acquired, long Token, string? Holder, TimeSpan HolderTtl);

/// <summary>What a renew found: renewed, or the value the key holds instead (null when it is gone).</summary>
internal readonly record struct RenewReply(bool Renewed, string? Holder);

/// <summary>The election's Redis calls. Each is bounded by the operation timeout and throws on a store error.</summary>
internal interface IElectionStore
{
    Task<AcquireReply> AcquireAsync(CancellationToken cancellationToken);

    Task<RenewReply> RenewAsync(string value, CancellationToken cancellationToken);

    Task<bool> ReleaseAsync(string value, CancellationToken cancellationToken);

    Task<string?> ReadAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The role's key in Redis. The leader key <c>{prefix}:leader:{role}</c> holds <c>id|token</c> (the lease value, see
/// <see cref="LeaseValue"/>) with PX = TTL; the fence key <c>{prefix}:leader:{role}:fence</c> (no TTL) holds the last
/// token issued, minted like lease tokens by the shared <see cref="LuaHelpers"/>.
/// </summary>
internal sealed class ElectionStore : IElectionStore
{
    /// <summary>
    /// KEYS: leader key, fence key. ARGV: instance id, ttl ms, events channel, role.
    /// Returns { 1, token, ttl } when acquired, or { 0, current value, pttl } when someone holds the key.
    /// </summary>
    internal const string AcquireBody = """
        local cur = get(KEYS[1])
        if cur then
          return { 0, cur, redis.call('PTTL', KEYS[1]) }
        end
        local tok = mint(KEYS[2], server_ms())
        redis.call('SET', KEYS[1], ARGV[1] .. '|' .. tok, 'PX', ARGV[2])
        redis.call('PUBLISH', ARGV[3], 'leader-elected|' .. ARGV[1] .. '|' .. ARGV[4])
        return { 1, tok, tonumber(ARGV[2]) }
        """;

    /// <summary>
    /// The compare-and-set renew: it extends the key only while it still holds this leader's value.
    /// KEYS: leader key. ARGV: expected value (<c>id|token</c>), ttl ms. Returns { 1, '' } or { 0, current value or '' }.
    /// </summary>
    internal const string RenewBody = """
        if holds(KEYS[1], ARGV[1]) then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return { 1, '' }
        end
        return { 0, get(KEYS[1]) or '' }
        """;

    /// <summary>
    /// Deletes the key only while it holds the expected value (or, for an expected value ending in <c>|</c>, any value
    /// of that owner: a stop also removes a term won by an acquire it stopped waiting for), and announces it so
    /// followers stand at once. KEYS: leader key. ARGV: expected value, events channel, instance id, role. Returns 1
    /// when deleted, else 0.
    /// </summary>
    internal const string ReleaseBody = """
        local cur = get(KEYS[1])
        if cur == ARGV[1] or (string.sub(ARGV[1], -1) == '|' and owned(cur, ARGV[1])) then
          redis.call('DEL', KEYS[1])
          redis.call('PUBLISH', ARGV[2], 'leader-released|' .. ARGV[3] .. '|' .. ARGV[4])
          return 1
        end
        return 0
        """;

    private const string AcquireScript = LuaHelpers.Prelude + AcquireBody;
    private const string RenewScript = LuaHelpers.Prelude + RenewBody;
    private const string ReleaseScript = LuaHelpers.Prelude + ReleaseBody;
    private static readonly RedisScript Acquire = new(AcquireScript);
    private static readonly RedisScript Renew = new(RenewScript);
    private static readonly RedisScript Release = new(ReleaseScript);

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKey _key;
    private readonly RedisKey _fence;
    private readonly string _channel;
    private readonly string _instanceId;
    private readonly string _role;
    private readonly long _ttlMs;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;

    public ElectionStore(IConnectionMultiplexer redis, ElectionOptions options, TimeProvider time)
    {
        var keys = new RedisKeys(options.KeyPrefix);
        _redis = redis;
        _key = keys.Leader(options.Role);
        _fence = keys.LeaderPrefix + options.Role + ":fence";
        _channel = keys.Events.ToString();
        _instanceId = options.InstanceId;
        _role = options.Role;
        _ttlMs = (long)options.Ttl.TotalMilliseconds;
        _timeout = options.OperationTimeout;
        _time = time;
    }

    /// <summary>The leader key.</summary>
    public RedisKey Key => _key;

    public async Task<AcquireReply> AcquireAsync(CancellationToken cancellationToken)
    {
        var r = (RedisResult[])(await Bounded(Acquire.EvaluateAsync(_redis.GetDatabase(), [_key, _fence], [_instanceId, _ttlMs, _channel, _role]), cancellationToken)
            .ConfigureAwait(false))!;
        return (long)r[0] == 1
            ? new AcquireReply(true, long.Parse((string)r[1]!, NumberStyles.None, CultureInfo.InvariantCulture), null, TimeSpan.Zero)
            : new AcquireReply(false, 0, (string)r[1]!, TimeSpan.FromMilliseconds(Math.Max(0, (long)r[2])));
    }

    public async Task<RenewReply> RenewAsync(string value, CancellationToken cancellationToken)
    {
        var r = (RedisResult[])(await Bounded(Renew.EvaluateAsync(_redis.GetDatabase(), [_key], [value, _ttlMs]), cancellationToken).ConfigureAwait(false))!;
        var holder = (string)r[1]!;
        return new RenewReply((long)r[0] == 1, holder.Length == 0 ? null : holder);
    }

    public async Task<bool> ReleaseAsync(string value, CancellationToken cancellationToken) =>
        (long)await Bounded(Release.EvaluateAsync(_redis.GetDatabase(), [_key], [value, _channel, _instanceId, _role]), cancellationToken).ConfigureAwait(false) == 1;

    public async Task<string?> ReadAsync(CancellationToken cancellationToken)
    {
        var value = await Bounded(_redis.GetDatabase().StringGetAsync(_key), cancellationToken).ConfigureAwait(false);
        return value.IsNull ? null : value.ToString();
    }

    private Task<T> Bounded<T>(Task<T> call, CancellationToken cancellationToken) => call.WaitAsync(_timeout, _time, cancellationToken);
}
