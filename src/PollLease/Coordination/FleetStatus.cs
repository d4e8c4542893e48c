using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>One registered instance as seen in the registry.</summary>
/// <param name="InstanceId">The instance id.</param>
/// <param name="Live">True while its heartbeat has not expired.</param>
/// <param name="HeartbeatExpiresIn">Time until its heartbeat expires (negative once expired).</param>
/// <param name="Metadata">The JSON metadata it registered with (host, pid, started), or null when its node key expired.</param>
public sealed record FleetNode(string InstanceId, bool Live, TimeSpan HeartbeatExpiresIn, string? Metadata);

/// <summary>One session's lease as seen in Redis.</summary>
/// <param name="SessionId">The session id.</param>
/// <param name="Owner">The holder, or null when nobody holds it.</param>
/// <param name="Token">The holder's fencing token (0 when none or malformed).</param>
/// <param name="LeaseExpiresIn">Time left on the lease (until its holder's heartbeat expires), or null when nobody holds it.</param>
/// <param name="Paused">The session is paused in the catalog (not polled, so nobody should hold it).</param>
public sealed record FleetLease(string SessionId, string? Owner, long Token, TimeSpan? LeaseExpiresIn, bool Paused = false);

/// <summary>A snapshot of the whole fleet: instances, leases, and how even the load is.</summary>
/// <param name="ServerTime">Redis server time of the snapshot.</param>
/// <param name="Nodes">Registered instances, live first.</param>
/// <param name="Leases">Every session in the catalog with its lease.</param>
public sealed record FleetStatus(DateTimeOffset ServerTime, IReadOnlyList<FleetNode> Nodes, IReadOnlyList<FleetLease> Leases)
{
    /// <summary>Live instance count.</summary>
    public int LiveCount => Nodes.Count(n => n.Live);

    /// <summary>Active (not paused) sessions nobody holds.</summary>
    public IReadOnlyList<string> Unowned => Leases.Where(l => l.Owner is null && !l.Paused).Select(l => l.SessionId).ToArray();

    /// <summary>Active (not paused) sessions.</summary>
    public int ActiveCount => Leases.Count(l => !l.Paused);

    /// <summary>The most sessions any live instance should hold: ceil(S / N) over active sessions (S when no instance is live).</summary>
    public int Ideal => LiveCount == 0 ? ActiveCount : (ActiveCount + LiveCount - 1) / LiveCount;

    /// <summary>Leases held per instance (live instances with none included).</summary>
    public IReadOnlyDictionary<string, int> CountsByOwner
    {
        get
        {
            var counts = Nodes.Where(n => n.Live).ToDictionary(n => n.InstanceId, _ => 0, StringComparer.Ordinal);
            foreach (var l in Leases)
            {
                if (l.Owner is not null)
                {
                    counts[l.Owner] = counts.GetValueOrDefault(l.Owner) + 1;
                }
            }
            return counts;
        }
    }
}

/// <summary>Reads a <see cref="FleetStatus"/> from Redis in two round trips, without SCAN.</summary>
public sealed class FleetStatusReader
{
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;

    /// <summary>Creates a reader for the fleet under <paramref name="keyPrefix"/>.</summary>
    /// <param name="redis">The connection.</param>
    /// <param name="keyPrefix">The fleet's key prefix (without braces).</param>
    public FleetStatusReader(IConnectionMultiplexer redis, string keyPrefix)
    {
        _redis = redis;
        _keys = new RedisKeys(keyPrefix);
    }

    /// <summary>Reads the registry, the catalog's session ids and every session's lease.</summary>
    /// <param name="cancellationToken">Cancels the read.</param>
    public async Task<FleetStatus> ReadAsync(CancellationToken cancellationToken = default)
    {
        var db = _redis.GetDatabase();
        var batch = db.CreateBatch();
        var time = batch.ExecuteAsync("TIME");
        var nodes = batch.SortedSetRangeByRankWithScoresAsync(_keys.Nodes);
        var sessions = batch.SetMembersAsync(_keys.Sessions);
        batch.Execute();
        await Task.WhenAll(time, nodes, sessions).WaitAsync(cancellationToken).ConfigureAwait(false);

        var t = (RedisResult[])(await time.ConfigureAwait(false))!;
        var nowMs = (long)t[0] * 1000 + (long)t[1] / 1000;
        var nodeList = (await nodes.ConfigureAwait(false)).Select(e => (Id: e.Element.ToString(), Expiry: (long)e.Score)).ToArray();
        var ids = (await sessions.ConfigureAwait(false)).Select(v => v.ToString()).Order(StringComparer.Ordinal).ToArray();

        batch = db.CreateBatch();
        var meta = nodeList.Select(n => batch.StringGetAsync(_keys.Node(n.Id))).ToArray();
        var values = ids.Select(id => batch.StringGetAsync(_keys.Lease(id))).ToArray();
        var ttls = ids.Select(id => batch.KeyTimeToLiveAsync(_keys.Lease(id))).ToArray();
        var paused = ids.Select(id => batch.HashGetAsync(_keys.Session(id), "paused")).ToArray();
        batch.Execute();
        try
        {
            await Task.WhenAll(meta.Cast<Task>().Concat(values).Concat(ttls).Concat(paused)).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (RedisServerException e) when (e.Message.StartsWith("WRONGTYPE", StringComparison.Ordinal))
        {
            // A key of the wrong type written by hand: shown as such below, the rest of the status still read.
        }

        var fleetNodes = nodeList
            .Select((n, i) => new FleetNode(n.Id, n.Expiry > nowMs, TimeSpan.FromMilliseconds(n.Expiry - nowMs), Read(meta[i]) is { IsNull: false } m ? m.ToString() : null))
            .OrderByDescending(n => n.Live).ThenBy(n => n.InstanceId, StringComparer.Ordinal).ToArray();
        // A lease is valid while its holder's heartbeat is: it expires with that heartbeat, and a key whose holder's
        // heartbeat has expired is free (the next acquirer overwrites it).
        var beats = nodeList.ToDictionary(n => n.Id, n => n.Expiry, StringComparer.Ordinal);
        var leases = ids.Select((id, i) =>
        {
            var v = Read(values[i]);
            var isPaused = Read(paused[i]) == "1";
            if (v.IsNull)
            {
                return new FleetLease(id, null, 0, null, isPaused);
            }
            if (!LeaseValue.TryParse(v.ToString(), out var owner, out var token))
            {
                return new FleetLease(id, v.ToString(), 0, ttls[i].Result, isPaused);
            }
            return beats.TryGetValue(owner, out var beat) && beat > nowMs
                ? new FleetLease(id, owner, token, TimeSpan.FromMilliseconds(beat - nowMs), isPaused)
                : new FleetLease(id, null, 0, null, isPaused);
        }).ToArray();
        return new FleetStatus(DateTimeOffset.FromUnixTimeMilliseconds(nowMs), fleetNodes, leases);
    }

    /// <summary>A key's value, or <c>(wrong type)</c> when Redis refused to read it as a string.</summary>
    private static RedisValue Read(Task<RedisValue> read) =>
        read.IsFaulted && read.Exception?.InnerException is RedisServerException e && e.Message.StartsWith("WRONGTYPE", StringComparison.Ordinal)
            ? "(wrong type)"
            : read.GetAwaiter().GetResult();
}
