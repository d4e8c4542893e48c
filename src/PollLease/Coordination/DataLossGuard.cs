using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// Detects that Redis lost the fleet's data and keeps new owners away until old ones can no longer poll.
/// </summary>
/// <remarks>
/// <para>
/// A lease is only as durable as the key that holds it. When Redis restarts without persistence, is flushed, or
/// fails over to a replica that had not yet received the last writes, the lease keys vanish (or go back in time)
/// while their owners still count them as valid: until the end of their local deadline, at most one lease TTL
/// after their last renew, which came before the loss. Any instance acquiring in that window makes a second
/// poller. This is Chubby's problem after a master fail-over, and the answer is Chubby's grace period.
/// </para>
/// <para>
/// The fleet's epoch key (<c>{prefix}:epoch</c>, no TTL) holds <c>id|quarantine-until|server</c>: when the epoch
/// began (server ms, also its id), until when nothing may be acquired, and which server process and replication
/// history the data was written under (<c>run_id:master_replid</c> from INFO, read inside the script, so it always
/// describes the server that runs it). The key missing (restart empty, FLUSHALL, eviction) or naming another server
/// (a restart, with or without persistence; a promoted replica) opens a new epoch with a quarantine of one lease
/// TTL of server time and announces it on the events channel. During the quarantine the cycle acquires nothing;
/// renewals, heartbeats and releases go on, so sessions whose leases survived keep being polled.
/// </para>
/// <para>
/// A server that does not answer INFO inside scripts (Garnet) gives an empty identity: then only a missing key
/// is detected. A brand-new fleet cannot be told from one whose data was lost, so its first start waits one
/// quarantine too, unless whoever created the keyspace vouches for it (<see cref="EstablishNewFleetAsync"/>).
/// </para>
/// </remarks>
internal static class DataLossGuard
{
    /// <summary>
    /// Lua shared by the scripts that use the epoch. <c>server_identity()</c>: <c>run_id:master_replid</c> of the
    /// server running the script, '' where INFO is unavailable to scripts. <c>epoch_guard(key, channel, me, now,
    /// ttl)</c>: the current epoch's id and the quarantine left (ms), opening a new epoch when the key is missing,
    /// malformed (of the wrong type included) or written under another server. Both need <see cref="LuaHelpers"/>.
    /// </summary>
    public const string Lua = """
        local function server_identity()
          local info = redis.pcall('INFO', 'server')
          local repl = redis.pcall('INFO', 'replication')
          if type(info) ~= 'string' or type(repl) ~= 'string' then return '' end
          local run = string.match(info, 'run_id:(%w+)')
          local replid = string.match(repl, 'master_replid:(%w+)')
          if not run or not replid then return '' end
          return run .. ':' .. replid
        end
        local function epoch_guard(key, channel, me, now, ttl)
          local server = server_identity()
          local cur = get(key)
          local id, till, stored
          if type(cur) == 'string' then id, till, stored = string.match(cur, '^(%d+)|(%d+)|(.*)$') end
          if not id or stored ~= server then
            id = string.format('%d', now)
            till = now + ttl
            redis.call('SET', key, id .. '|' .. string.format('%d', till) .. '|' .. server)
            redis.call('PUBLISH', channel, 'epoch|' .. me .. '|' .. id)
          end
          return id, math.max(0, tonumber(till) - now)
        end

        """;

    /// <summary>Writes the epoch with no quarantine when there is none yet (KEYS[1] the epoch key); returns 1 when written.</summary>
    private const string Establish = LuaHelpers.Prelude + Lua + """
        local now = server_ms()
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('SET', KEYS[1], string.format('%d', now) .. '|0|' .. server_identity())
        return 1
        """;

    private static readonly RedisScript EstablishScript = new(Establish);

    /// <summary>
    /// Starts a fleet's first epoch with no quarantine, for a caller that knows no instance ever held a lease under
    /// this prefix on this server (it created the server a moment ago, or the prefix is new). Does nothing when the
    /// epoch exists. Never call it after a loss: that is exactly when the quarantine is needed.
    /// </summary>
    public static async Task<bool> EstablishNewFleetAsync(IDatabaseAsync db, RedisKeys keys) =>
        (long)await EstablishScript.EvaluateAsync(db, [keys.Epoch], []).ConfigureAwait(false) == 1;
}
