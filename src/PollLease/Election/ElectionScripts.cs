namespace PollLease.Election;

/// <summary>
/// The election's Lua. The leader key <c>{prefix}:leader:{role}</c> holds <c>id|token</c> with PX = TTL; the fence key
/// <c>{prefix}:leader:{role}:fence</c> (no TTL) holds the last token issued, so tokens are max(last + 1, server
/// time ms), the same scheme as lease tokens: strictly increasing, and still increasing after Redis restarts empty.
/// </summary>
internal static class ElectionScripts
{
    /// <summary>
    /// KEYS: leader key, fence key. ARGV: instance id, ttl ms, events channel, role.
    /// Returns { 1, token, ttl } when acquired, or { 0, current value, pttl } when someone holds the key.
    /// </summary>
    public const string Acquire = """
        local cur = redis.call('GET', KEYS[1])
        if cur then
          return { 0, cur, redis.call('PTTL', KEYS[1]) }
        end
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local last = tonumber(redis.call('GET', KEYS[2])) or 0
        local tok = string.format('%d', math.max(last + 1, now))
        redis.call('SET', KEYS[1], ARGV[1] .. '|' .. tok, 'PX', ARGV[2])
        redis.call('SET', KEYS[2], tok)
        redis.call('PUBLISH', ARGV[3], 'leader-elected|' .. ARGV[1] .. '|' .. ARGV[4])
        return { 1, tok, tonumber(ARGV[2]) }
        """;

    /// <summary>
    /// The compare-and-set renew (the Redis stand-in for the seed's revision-checked Update).
    /// KEYS: leader key. ARGV: expected value (<c>id|token</c>), ttl ms. Returns { 1, '' } or { 0, current value or '' }.
    /// </summary>
    public const string Renew = """
        local cur = redis.call('GET', KEYS[1])
        if cur == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return { 1, '' }
        end
        return { 0, cur or '' }
        """;

    /// <summary>
    /// Deletes the key only while it holds the expected value (or, for an expected value ending in <c>|</c>, any value
    /// of that owner: a stop also removes a term won by an acquire it stopped waiting for), and announces it so
    /// followers stand at once. KEYS: leader key. ARGV: expected value, events channel, instance id, role. Returns 1
    /// when deleted, else 0.
    /// </summary>
    public const string Release = """
        local cur = redis.call('GET', KEYS[1])
        if cur and (cur == ARGV[1] or (string.sub(ARGV[1], -1) == '|' and string.sub(cur, 1, #ARGV[1]) == ARGV[1])) then
          redis.call('DEL', KEYS[1])
          redis.call('PUBLISH', ARGV[2], 'leader-released|' .. ARGV[3] .. '|' .. ARGV[4])
          return 1
        end
        return 0
        """;
}
