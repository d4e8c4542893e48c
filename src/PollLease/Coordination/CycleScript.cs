using System.Globalization;
using System.Text;
using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// The lease cycle's wire protocol in one place: the named KEYS, ARGV and reply fields, the per-session sections,
/// the Lua that reads them by those names, the request builder and the reply parser. The Lua prelude is generated
/// from the enums below, so a field is added by adding it to its enum (and reading it by name in Lua and C#).
/// </summary>
/// <remarks>
/// Model (an etcd lease / Consul session): a lease key holds <c>owner|token</c> and is valid while its owner's
/// heartbeat in <c>{p}:nodes</c> (score = expiry, server ms) is ahead of server time. Renewing every lease is the
/// one ZADD of the heartbeat. Acquiring an existing key succeeds only when its holder's heartbeat has expired or is
/// gone. Lease keys carry a long safety PX (<see cref="Arg.KeyTtlMs"/>), moved on a rolling slice at a time, so
/// the keys of a fleet that died vanish without a janitor; the per-instance index <c>{p}:held:{id}</c> lets the
/// script find and delete every lease of an instance that leaves or whose heartbeat lapsed.
/// </remarks>
internal static class CycleScript
{
    /// <summary>Fixed KEYS, 1-based, before the per-session sections.</summary>
    public enum Key
    {
        /// <summary>Sorted set: instance id, score = heartbeat expiry (server ms).</summary>
        Nodes = 1,

        /// <summary>This instance's metadata key (for humans), PX = heartbeat TTL.</summary>
        Node,

        /// <summary>The session catalog's version counter.</summary>
        SessionsVersion,

        /// <summary>Set of the session ids this instance acquired and has not released (its index).</summary>
        Held,

        /// <summary>The fleet's data epoch (<see cref="DataLossGuard"/>).</summary>
        Epoch,
    }

    /// <summary>Fixed ARGV, 1-based, before the per-session sections.</summary>
    public enum Arg
    {
        /// <summary>This instance's id.</summary>
        Instance = 1,

        /// <summary>Lease TTL: the heartbeat is set to now + this.</summary>
        LeaseTtlMs,

        /// <summary>How long an expired registry entry is kept (and the metadata key's PX).</summary>
        HeartbeatTtlMs,

        /// <summary>Safety PX of lease, poll-time and index keys.</summary>
        KeyTtlMs,

        /// <summary>A <see cref="HeartbeatMode"/> value.</summary>
        Mode,

        /// <summary>JSON metadata for the node key.</summary>
        Metadata,

        /// <summary>Server time (ms) after which the call must change nothing; 0 for no limit.</summary>
        NotAfterMs,

        /// <summary>The fleet's events channel.</summary>
        Channel,

        /// <summary>The lease key prefix (session id = key minus it).</summary>
        LeasePrefix,

        /// <summary>Number of refresh entries.</summary>
        RefreshCount,

        /// <summary>Number of acquire entries.</summary>
        AcquireCount,

        /// <summary>Number of release entries.</summary>
        ReleaseCount,

        /// <summary>The epoch this instance's leases were granted in ('' before its first answer).</summary>
        KnownEpoch,
    }

    /// <summary>Reply fields, 1-based positions of the returned array.</summary>
    public enum Out
    {
        /// <summary>Server time (ms).</summary>
        ServerTimeMs = 1,

        /// <summary>1 when this instance's heartbeat had lapsed or was missing.</summary>
        Lapsed,

        /// <summary>Flat list: live id, heartbeat expiry, ...</summary>
        Live,

        /// <summary>Flat list of failed refreshes only: 1-based index, value found or 0.</summary>
        RefreshFailed,

        /// <summary>Per acquire entry: token or '', holder or '', ms until takeable, previous poll ms or ''.</summary>
        Acquired,

        /// <summary>Per release entry: 1 or 0.</summary>
        Released,

        /// <summary>Leases deleted through the index.</summary>
        Swept,

        /// <summary>Catalog version or ''.</summary>
        CatalogVersion,

        /// <summary>The fleet's data epoch id.</summary>
        Epoch,

        /// <summary>Milliseconds of the data-loss quarantine left (0: none); meanwhile nothing is acquired.</summary>
        QuarantineMs,
    }

    /// <summary>Refresh entry: KEYS lease, poll-time; ARGV expected value, poll start ms or ''.</summary>
    public const int RefreshKeys = 2, RefreshArgs = 2;

    /// <summary>Acquire entry: KEYS lease, fence, poll-time; no ARGV.</summary>
    public const int AcquireKeys = 3;

    /// <summary>Release entry: KEYS lease, poll-time; ARGV expected value, poll start ms or ''.</summary>
    public const int ReleaseKeys = 2, ReleaseArgs = 2;

    /// <summary>The body; it reads KEYS, ARGV and reply slots only through the names the prelude defines.</summary>
    public const string Body = """
        -- Time is the server's, never a client's clock.
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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

        -- A key of the wrong type (written by hand) costs its own session, never the whole cycle.
        local function get(key)
          local value = redis.pcall('GET', key)
          if type(value) == 'table' and value.err then return 'wrong-type' end
          return value
        end

        -- Deletes every lease this instance's index names that still carries this instance's value.
        local function sweep()
          local n = 0
          for _, name in ipairs(redis.call('SMEMBERS', KEY_Held)) do
            local key = prefix .. name
            local cur = get(key)
            if cur and string.sub(cur, 1, #mine) == mine then
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

        -- Refresh: move a slice of leases' safety expiry on, and record poll starts, where the lease is still ours.
        local failed = {}
        for i = 1, tonumber(ARG_RefreshCount) do
          local lease, polled = KEYS[k + 1], KEYS[k + 2]
          local expected, polledAt = ARGV[a + 1], ARGV[a + 2]
          k = k + REFRESH_KEYS
          a = a + REFRESH_ARGS
          local cur = get(lease)
          if cur == expected then
            redis.call('PEXPIRE', lease, keyttl)
            if polledAt ~= '' then redis.call('SET', polled, polledAt, 'PX', keyttl) end
          else
            failed[#failed + 1] = i
            failed[#failed + 1] = cur or 0
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
          elseif cur and string.sub(cur, 1, #mine) ~= mine then
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
            local last = tonumber(get(fence)) or 0
            local tok = string.format('%d', math.max(last + 1, now))
            redis.call('SET', lease, mine .. tok, 'PX', keyttl)
            redis.call('SET', fence, tok)
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
          redis.call('PEXPIRE', KEY_Held, keyttl)
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

    /// <summary>The script sent to Redis: the generated prelude naming every field, then <see cref="Body"/>.</summary>
    public static readonly string Lua = Prelude() + DataLossGuard.Lua + Body;

    private static readonly RedisScript Script = new(Lua);

    private static readonly int KeysFixed = Enum.GetValues<Key>().Length;
    private static readonly int ArgsFixed = Enum.GetValues<Arg>().Length;
    private static readonly int OutCount = Enum.GetValues<Out>().Length;

    private static string Prelude()
    {
        var lua = new StringBuilder("-- Generated from CycleScript's Key, Arg and Out enums.\n");
        foreach (var k in Enum.GetValues<Key>())
        {
            lua.Append(CultureInfo.InvariantCulture, $"local KEY_{k} = KEYS[{(int)k}]\n");
        }
        foreach (var a in Enum.GetValues<Arg>())
        {
            lua.Append(CultureInfo.InvariantCulture, $"local ARG_{a} = ARGV[{(int)a}]\n");
        }
        foreach (var o in Enum.GetValues<Out>())
        {
            lua.Append(CultureInfo.InvariantCulture, $"local OUT_{o} = {(int)o}\n");
        }
        lua.Append(CultureInfo.InvariantCulture, $"local KEYS_FIXED, ARGS_FIXED = {Enum.GetValues<Key>().Length}, {Enum.GetValues<Arg>().Length}\n");
        lua.Append(CultureInfo.InvariantCulture, $"local REFRESH_KEYS, REFRESH_ARGS, ACQUIRE_KEYS, RELEASE_KEYS, RELEASE_ARGS = {RefreshKeys}, {RefreshArgs}, {AcquireKeys}, {ReleaseKeys}, {ReleaseArgs}\n");
        lua.Append(CultureInfo.InvariantCulture, $"local MODE_Beat, MODE_Register = {(int)HeartbeatMode.Beat}, {(int)HeartbeatMode.Register}\n");
        return lua.ToString();
    }

    /// <summary>Builds KEYS and ARGV for <paramref name="request"/>.</summary>
    public static (RedisKey[] Keys, RedisValue[] Args) Build(CycleContext c, CycleRequest request, long notAfterMs, string knownEpoch = "")
    {
        var keys = new RedisKey[KeysFixed + (RefreshKeys * request.Refresh.Count) + (AcquireKeys * request.Acquire.Count) + (ReleaseKeys * request.Release.Count)];
        var args = new RedisValue[ArgsFixed + (RefreshArgs * request.Refresh.Count) + (ReleaseArgs * request.Release.Count)];
        foreach (var (key, value) in new (Key, RedisKey)[] { (Key.Nodes, c.Keys.Nodes), (Key.Node, c.Keys.Node(c.InstanceId)), (Key.SessionsVersion, c.Keys.SessionsVersion), (Key.Held, c.Keys.Held(c.InstanceId)), (Key.Epoch, c.Keys.Epoch) })
        {
            keys[(int)key - 1] = value;
        }
        foreach (var (arg, value) in new (Arg, RedisValue)[]
        {
            (Arg.Instance, c.InstanceId), (Arg.LeaseTtlMs, c.LeaseTtlMs), (Arg.HeartbeatTtlMs, c.HeartbeatTtlMs), (Arg.KeyTtlMs, c.KeyTtlMs),
            (Arg.Mode, (int)request.Heartbeat), (Arg.Metadata, c.Metadata), (Arg.NotAfterMs, notAfterMs), (Arg.Channel, c.Keys.Root + ":events"),
            (Arg.LeasePrefix, c.Keys.LeasePrefix), (Arg.RefreshCount, request.Refresh.Count), (Arg.AcquireCount, request.Acquire.Count),
            (Arg.ReleaseCount, request.Release.Count), (Arg.KnownEpoch, knownEpoch),
        })
        {
            args[(int)arg - 1] = value;
        }
        int k = KeysFixed, a = ArgsFixed;
        foreach (var held in request.Refresh)
        {
            keys[k++] = c.Keys.Lease(held.SessionId);
            keys[k++] = c.Keys.Polled(held.SessionId);
            args[a++] = LeaseValue.Format(c.InstanceId, held.Token);
            args[a++] = held.PollStartMs > 0 ? held.PollStartMs : "";
        }
        foreach (var session in request.Acquire)
        {
            keys[k++] = c.Keys.Lease(session);
            keys[k++] = c.Keys.Fence(session);
            keys[k++] = c.Keys.Polled(session);
        }
        foreach (var held in request.Release)
        {
            keys[k++] = c.Keys.Lease(held.SessionId);
            keys[k++] = c.Keys.Polled(held.SessionId);
            args[a++] = LeaseValue.Format(c.InstanceId, held.Token);
            args[a++] = held.PollStartMs > 0 ? held.PollStartMs : "";
        }
        return (keys, args);
    }

    /// <summary>Runs the script (EVALSHA, EVAL on NOSCRIPT), each command issued through <paramref name="enqueue"/>.</summary>
    public static Task<RedisResult> EvaluateAsync(IDatabaseAsync db, RedisKey[] keys, RedisValue[] args, Func<Func<Task<RedisResult>>, Task<RedisResult>> enqueue) =>
        Script.EvaluateAsync(db, keys, args, enqueue);

    /// <summary>Reads the reply of <paramref name="request"/>; throws on a reply of the wrong shape.</summary>
    public static CycleResponse Parse(RedisResult result, CycleRequest request)
    {
        var top = (RedisResult[])result!;
        if (top.Length != OutCount)
        {
            throw new InvalidOperationException($"Lease cycle script returned {top.Length} fields, expected {OutCount}.");
        }
        RedisResult Field(Out o) => top[(int)o - 1];

        var liveRaw = (RedisResult[])Field(Out.Live)!;
        var live = new string[liveRaw.Length / 2];
        var beats = new Dictionary<string, long>(live.Length, StringComparer.Ordinal);
        for (var i = 0; i < live.Length; i++)
        {
            live[i] = liveRaw[2 * i].ToString();
            beats[live[i]] = (long)double.Parse(liveRaw[(2 * i) + 1].ToString(), NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        // Only failures are listed (index, then 0 or the value found): the common case costs no reply.
        var failedRaw = (RedisResult[])Field(Out.RefreshFailed)!;
        var failed = new string?[request.Refresh.Count];
        for (var f = 0; f + 1 < failedRaw.Length; f += 2)
        {
            var found = failedRaw[f + 1];
            failed[(int)(long)failedRaw[f] - 1] = found.Resp2Type == ResultType.Integer ? "" : found.ToString();
        }

        var acquireRaw = (RedisResult[])Field(Out.Acquired)!;
        var acquire = new AcquireOutcome[request.Acquire.Count];
        for (var i = 0; i < acquire.Length; i++)
        {
            var token = acquireRaw[4 * i].ToString();
            var previousMs = long.TryParse(acquireRaw[(4 * i) + 3].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? ms : 0;
            // No token and no holder: nothing was tried (the data-loss quarantine).
            var holder = acquireRaw[(4 * i) + 1].ToString();
            acquire[i] = string.IsNullOrEmpty(token)
                ? new AcquireOutcome(0, holder.Length == 0 ? null : holder, TimeSpan.FromMilliseconds((long)acquireRaw[(4 * i) + 2]), 0)
                : new AcquireOutcome(long.Parse(token, NumberStyles.None, CultureInfo.InvariantCulture), null, TimeSpan.Zero, previousMs);
        }

        var released = ((RedisResult[])Field(Out.Released)!).Select(r => (long)r == 1).ToArray();
        return new CycleResponse((long)Field(Out.ServerTimeMs), (long)Field(Out.Lapsed) == 1, live, beats, failed, acquire, released,
            (int)(long)Field(Out.Swept), Field(Out.CatalogVersion).ToString(), Field(Out.Epoch).ToString(), TimeSpan.FromMilliseconds((long)Field(Out.QuarantineMs)));
    }
}
