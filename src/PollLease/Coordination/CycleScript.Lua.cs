namespace PollLease.Coordination;

/// <summary>The lease cycle's Lua: the prelude naming every slot of <see cref="Key"/>, <see cref="Arg"/> and <see cref="Out"/>, then the body.</summary>
internal static partial class CycleScript
{
    /// <summary>Names for every fixed KEYS, ARGV and reply slot and for the section widths (checked against the enums by a test).</summary>
    public const string Prelude = """
        -- The names of the KEYS, ARGV and reply slots: a test checks them against CycleScript's Key, Arg and Out enums.
        local KEY_Nodes = KEYS[1]
        local KEY_Node = KEYS[2]
        local KEY_SessionsVersion = KEYS[3]
        local KEY_Held = KEYS[4]
        local KEY_Epoch = KEYS[5]
        local ARG_Instance = ARGV[1]
        local ARG_LeaseTtlMs = ARGV[2]
        local ARG_HeartbeatTtlMs = ARGV[3]
        local ARG_KeyTtlMs = ARGV[4]
        local ARG_Mode = ARGV[5]
        local ARG_Metadata = ARGV[6]
        local ARG_NotAfterMs = ARGV[7]
        local ARG_Channel = ARGV[8]
        local ARG_LeasePrefix = ARGV[9]
        local ARG_RefreshCount = ARGV[10]
        local ARG_AcquireCount = ARGV[11]
        local ARG_ReleaseCount = ARGV[12]
        local ARG_KnownEpoch = ARGV[13]
        local OUT_ServerTimeMs = 1
        local OUT_Lapsed = 2
        local OUT_Live = 3
        local OUT_RefreshFailed = 4
        local OUT_Acquired = 5
        local OUT_Released = 6
        local OUT_Swept = 7
        local OUT_CatalogVersion = 8
        local OUT_Epoch = 9
        local OUT_QuarantineMs = 10
        local KEYS_FIXED, ARGS_FIXED = 5, 13
        local REFRESH_KEYS, REFRESH_ARGS, ACQUIRE_KEYS, RELEASE_KEYS, RELEASE_ARGS = 2, 2, 3, 2, 2
        local MODE_Beat, MODE_Register = 1, 2

        """;

    /// <summary>The body; it reads KEYS, ARGV and reply slots only through the names the prelude defines.</summary>
    public const string Body = """
        local now = server_ms()
        -- A call executed after its client stopped waiting would hold sessions nobody polls: it changes nothing.
        local notafter = tonumber(ARG_NotAfterMs)
        if notafter > 0 and now > notafter then
          return redis.error_reply('LATE ' .. string.format('%d', now))
        end
        local me = ARG_Instance
        local mine = me .. '|'
        local ttl = tonumber(ARG_LeaseTtlMs)
        local keyttl = tonumber(ARG_KeyTtlMs)
        local mode = tonumber(ARG_Mode)
        local prefix = ARG_LeasePrefix
        local out = {}
        out[OUT_Swept] = 0
        -- Redis lost data (restart, FLUSHALL, failover to a replica that missed writes): a new epoch and a quarantine.
        local epoch, quarantine = epoch_guard(KEY_Epoch, ARG_Channel, me, now, ttl)

        -- get (a shared helper) answers 'wrong-type' for a key written by hand: it costs its own session, never the whole cycle.

        -- Deletes every lease this instance's index names that still carries this instance's value.
        local function sweep()
          local n = 0
          for _, name in ipairs(redis.call('SMEMBERS', KEY_Held)) do
            local key = prefix .. name
            local cur = get(key)
            if owned(cur, mine) then
              redis.call('DEL', key)
              n = n + 1
            end
          end
          redis.call('DEL', KEY_Held)
          return n
        end

        -- The heartbeat: every lease of this instance is valid while this score is ahead of server time, so this
        -- one ZADD renews them all. Found expired or missing (Redis lost it, or the instance stalled past it),
        -- others may already have taken its leases: all are deleted and the client drops them. So are leases
        -- granted in an earlier epoch: after a loss nothing proves them (a replica may hold an older heartbeat).
        local lapsed = 0
        if mode > 0 then
          local beat = tonumber(redis.call('ZSCORE', KEY_Nodes, me))
          local stale = ARG_KnownEpoch ~= '' and ARG_KnownEpoch ~= epoch
          if mode == MODE_Beat and (not beat or beat <= now or stale) then
            lapsed = 1
            out[OUT_Swept] = sweep()
            redis.call('PUBLISH', ARG_Channel, 'reset|' .. me)
          end
          redis.call('ZADD', KEY_Nodes, now + ttl, me)
          redis.call('SET', KEY_Node, ARG_Metadata, 'PX', tonumber(ARG_HeartbeatTtlMs))
          if mode == MODE_Register then redis.call('PUBLISH', ARG_Channel, 'joined|' .. me) end
        end

        local k = KEYS_FIXED
        local a = ARGS_FIXED

        -- Refresh: move a slice of leases' safety expiry on (one PEXPIRE each: a lease can only change hands once its
        -- owner's heartbeat lapsed, which is caught above), and record poll starts where the lease is still ours.
        local failed = {}
        for i = 1, tonumber(ARG_RefreshCount) do
          local lease, polled = KEYS[k + 1], KEYS[k + 2]
          local expected, polledAt = ARGV[a + 1], ARGV[a + 2]
          k = k + REFRESH_KEYS
          a = a + REFRESH_ARGS
          local cur = expected
          if polledAt ~= '' then
            cur = get(lease)
            if cur == expected then redis.call('SET', polled, polledAt, 'PX', keyttl) end
          end
          if cur ~= expected or redis.call('PEXPIRE', lease, keyttl) == 0 then
            failed[#failed + 1] = i
            failed[#failed + 1] = (cur ~= expected and cur) or 0
            redis.call('SREM', KEY_Held, string.sub(lease, #prefix + 1))
          end
        end

        -- Acquire: a free key, one of ours, or one whose holder's heartbeat expired is taken with a new token,
        -- max(last + 1, server ms): increasing per session even after Redis restarts empty.
        local acquired = {}
        for i = 1, tonumber(ARG_AcquireCount) do
          local lease, fence, polled = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
          k = k + ACQUIRE_KEYS
          local cur = get(lease)
          local wait = -1
          if quarantine > 0 then
            -- An owner of a lease Redis lost may still poll until its local deadline: nobody takes anything yet.
            cur = ''
            wait = quarantine
          elseif cur and not owned(cur, mine) then
            local holder = string.match(cur, '^(.+)|%d+$')
            if holder then
              local beat = tonumber(redis.call('ZSCORE', KEY_Nodes, holder))
              if beat and beat > now then wait = beat - now end
            else
              -- Not a lease value: left alone, looked at again when it expires or a lease TTL later.
              local pttl = redis.call('PTTL', lease)
              wait = (pttl > 0) and pttl or ttl
            end
          end
          local j = 4 * (i - 1)
          if wait >= 0 then
            acquired[j + 1] = ''
            acquired[j + 2] = cur
            acquired[j + 3] = wait
            acquired[j + 4] = ''
          else
            local tok = mint(fence, now)
            redis.call('SET', lease, mine .. tok, 'PX', keyttl)
            redis.call('SADD', KEY_Held, string.sub(lease, #prefix + 1))
            local at = get(polled)
            acquired[j + 1] = tok
            acquired[j + 2] = ''
            acquired[j + 3] = 0
            acquired[j + 4] = (at and at ~= 'wrong-type') and at or ''
          end
        end

        -- Release: compare the value, record the last poll start for the next owner, delete, announce.
        local released = {}
        local names = {}
        for i = 1, tonumber(ARG_ReleaseCount) do
          local lease, polled = KEYS[k + 1], KEYS[k + 2]
          local expected, polledAt = ARGV[a + 1], ARGV[a + 2]
          k = k + RELEASE_KEYS
          a = a + RELEASE_ARGS
          local name = string.sub(lease, #prefix + 1)
          if get(lease) == expected then
            if polledAt ~= '' then redis.call('SET', polled, polledAt, 'PX', keyttl) end
            redis.call('DEL', lease)
            released[i] = 1
            names[#names + 1] = name
          else
            released[i] = 0
          end
          redis.call('SREM', KEY_Held, name)
        end
        if #names > 0 then
          redis.call('PUBLISH', ARG_Channel, 'released|' .. me .. '|' .. table.concat(names, ','))
        end

        if mode < 0 then
          -- Leaving: whatever the index still names (a cycle the client stopped waiting for ran before this call:
          -- one connection runs scripts in send order) is deleted, then the heartbeat goes.
          out[OUT_Swept] = out[OUT_Swept] + sweep()
          redis.call('ZREM', KEY_Nodes, me)
          redis.call('DEL', KEY_Node)
          redis.call('PUBLISH', ARG_Channel, 'left|' .. me)
        elseif mode > 0 then
          redis.call('PEXPIRE', KEY_Held, keyttl); redis.call('PEXPIRE', KEY_Nodes, keyttl)
        end
        redis.call('ZREMRANGEBYSCORE', KEY_Nodes, '-inf', '(' .. string.format('%d', now - tonumber(ARG_HeartbeatTtlMs)))
        out[OUT_ServerTimeMs] = now
        out[OUT_Lapsed] = lapsed
        out[OUT_Live] = redis.call('ZRANGEBYSCORE', KEY_Nodes, '(' .. string.format('%d', now), '+inf', 'WITHSCORES')
        out[OUT_RefreshFailed] = failed
        out[OUT_Acquired] = acquired
        out[OUT_Released] = released
        out[OUT_CatalogVersion] = redis.call('GET', KEY_SessionsVersion) or ''
        out[OUT_Epoch] = epoch
        out[OUT_QuarantineMs] = quarantine
        return out
        """;

    /// <summary>The script sent to Redis: <see cref="Prelude"/>, the data-loss guard's functions, then <see cref="Body"/>.</summary>
    public const string Lua = LuaHelpers.Prelude + Prelude + DataLossGuard.Lua + Body;
}
