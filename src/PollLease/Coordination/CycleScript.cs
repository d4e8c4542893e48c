using System.Globalization;
using System.Text;
using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// The lease cycle's wire protocol in one place: the named KEYS, ARGV and reply fields, the per-session sections,
/// the Lua that reads them by those names (CycleScript.Lua.cs), the request builder and the reply parser. A field is
/// added to its enum, to the Lua prelude (a test checks the two agree) and read by name in Lua and C#.
/// </summary>
/// <remarks>
/// Model (an etcd lease / Consul session): a lease key holds <c>owner|token</c> and is valid while its owner's
/// heartbeat in <c>{p}:nodes</c> (score = expiry, server ms) is ahead of server time. Renewing every lease is the
/// one ZADD of the heartbeat. Acquiring an existing key succeeds only when its holder's heartbeat has expired or is
/// gone. Lease keys carry a long safety PX (<see cref="Arg.KeyTtlMs"/>), moved on a rolling slice at a time, so
/// the keys of a fleet that died vanish without a janitor; the per-instance index <c>{p}:held:{id}</c> lets the
/// script find and delete every lease of an instance that leaves or whose heartbeat lapsed.
/// </remarks>
internal static partial class CycleScript
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

    private static readonly RedisScript Script = new(Lua);

    private static readonly int KeysFixed = Enum.GetValues<Key>().Length;
    private static readonly int ArgsFixed = Enum.GetValues<Arg>().Length;
    private static readonly int OutCount = Enum.GetValues<Out>().Length;

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
