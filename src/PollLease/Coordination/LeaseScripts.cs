namespace PollLease.Coordination;

/// <summary>The lease cycle's Lua. Time comes from the server's TIME, never from a client clock.</summary>
internal static class LeaseScripts
{
    /// <summary>
    /// One round trip for a whole cycle: heartbeat (or register / deregister), renew R leases, try to acquire
    /// A leases, release L leases, and read back the live nodes, the catalog version and the server time.
    /// KEYS: [1] nodes zset, [2] node key, [3] sessions version, then R lease keys to renew, then A pairs
    /// (lease key, fence key) to acquire, then L lease keys to release.
    /// ARGV: [1] instance id, [2] lease TTL ms, [3] heartbeat TTL ms, [4] heartbeat mode (0 none, 1 beat,
    /// 2 register and announce, -1 deregister), [5] node metadata, [6] R, [7] A, [8] L, [9] events channel,
    /// [10] length of the lease key prefix, [11] the server time (ms) after which the call must do nothing
    /// (0: no limit), then R expected lease values, then L expected lease values.
    /// Returns { now ms, live node ids each followed by its heartbeat expiry (ms), renew failures only (pairs:
    /// 1-based index, then 0 when the lease is missing or the other holder's value; every lease not listed was
    /// renewed: the common case costs no reply), A x { token or '', holder or '', pttl }, L release results (1 or 0), catalog version or '' }.
    /// Tokens are max(last fence + 1, server time ms): strictly increasing per session, and still
    /// increasing after Redis restarts with no data because server time has moved on.
    /// A call that reaches Redis after ARGV[11] fails with <c>LATE now</c> and changes nothing: its client has
    /// given up waiting, so a renew or an acquire it never hears of would hold sessions nobody polls.
    /// </summary>
    public const string Cycle = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local notafter = tonumber(ARGV[11])
        if notafter > 0 and now > notafter then
          return redis.error_reply('LATE ' .. string.format('%d', now))
        end
        local me = ARGV[1]
        local ttl = tonumber(ARGV[2])
        local hbttl = tonumber(ARGV[3])
        local mode = tonumber(ARGV[4])
        local r = tonumber(ARGV[6])
        local a = tonumber(ARGV[7])
        local l = tonumber(ARGV[8])
        local channel = ARGV[9]
        local plen = tonumber(ARGV[10])
        local mine = me .. '|'
        -- A lease or fence key of the wrong type (written by hand) must cost its own session, not abort the cycle.
        local function get(key)
          local value = redis.pcall('GET', key)
          if type(value) == 'table' and value.err then return 'wrong-type' end
          return value
        end
        if mode > 0 then
          redis.call('ZADD', KEYS[1], now + hbttl, me)
          redis.call('SET', KEYS[2], ARGV[5], 'PX', hbttl)
          if mode == 2 then redis.call('PUBLISH', channel, 'joined|' .. me) end
        elseif mode < 0 then
          redis.call('ZREM', KEYS[1], me)
          redis.call('DEL', KEYS[2])
        end
        local k = 3
        local v = 11
        local renewed = {}
        for i = 1, r do
          local key = KEYS[k + i]
          local cur = get(key)
          if cur == ARGV[v + i] then
            redis.call('PEXPIRE', key, ttl)
          else
            renewed[#renewed + 1] = i
            renewed[#renewed + 1] = cur or 0
          end
        end
        k = k + r
        local acquired = {}
        for i = 1, a do
          local lease = KEYS[k + 2 * i - 1]
          local fence = KEYS[k + 2 * i]
          local cur = get(lease)
          if cur and string.sub(cur, 1, #mine) ~= mine then
            acquired[3 * i - 2] = ''
            acquired[3 * i - 1] = cur
            acquired[3 * i] = redis.call('PTTL', lease)
          else
            local last = tonumber(get(fence)) or 0
            local tok = string.format('%d', math.max(last + 1, now))
            redis.call('SET', lease, mine .. tok, 'PX', ttl)
            redis.call('SET', fence, tok)
            acquired[3 * i - 2] = tok
            acquired[3 * i - 1] = ''
            acquired[3 * i] = ttl
          end
        end
        k = k + 2 * a
        v = v + r
        local released = {}
        local names = {}
        for i = 1, l do
          local key = KEYS[k + i]
          if get(key) == ARGV[v + i] then
            redis.call('DEL', key)
            released[i] = 1
            names[#names + 1] = string.sub(key, plen + 1)
          else
            released[i] = 0
          end
        end
        if #names > 0 then
          redis.call('PUBLISH', channel, 'released|' .. me .. '|' .. table.concat(names, ','))
        end
        if mode < 0 then redis.call('PUBLISH', channel, 'left|' .. me) end
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', now - hbttl))
        local live = redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%d', now), '+inf', 'WITHSCORES')
        local version = redis.call('GET', KEYS[3]) or ''
        return { now, live, renewed, acquired, released, version }
        """;
}
