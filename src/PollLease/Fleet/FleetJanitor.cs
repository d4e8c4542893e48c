using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PollLease.Assignment;
using PollLease.Coordination;
using PollLease.Election;
using PollLease.Sessions;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Fleet;

/// <summary>
/// The fleet-wide duties, done by exactly one instance at a time: the holder of the <c>janitor</c> role. Each sweep
/// removes registry entries of dead instances, deletes leases and fences of sessions that are no longer in the
/// catalog, and refreshes the fleet gauges. Every write is a script fenced on the janitor's own leader key, so a
/// janitor that lost its role (paused, partitioned) cannot delete anything, even mid-sweep.
/// </summary>
internal sealed class FleetJanitor : IAsyncDisposable
{
    /// <summary>
    /// KEYS: leader key, nodes zset, then one node key per candidate. ARGV: expected leader value, cutoff ms
    /// (heartbeat TTL), then the candidate ids. Removes each candidate whose heartbeat is still older than the
    /// cutoff (it may have come back since it was read). Returns the count removed, or -1 when not the janitor.
    /// </summary>
    internal const string RemoveDeadNodesScript = """
        if not holds(KEYS[1], ARGV[1]) then return -1 end
        local cutoff = server_ms() - tonumber(ARGV[2])
        local removed = 0
        for i = 3, #ARGV do
          local score = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[i]))
          if score and score < cutoff then
            redis.call('ZREM', KEYS[2], ARGV[i])
            redis.call('DEL', KEYS[i])
            removed = removed + 1
          end
        end
        return removed
        """;

    /// <summary>
    /// KEYS: leader key, sessions set, then (lease, fence) per candidate. ARGV: expected leader value, then the
    /// candidate session ids. For each id still missing from the catalog: delete its lease; its fence goes only
    /// when no lease was left, so a fence outlives its last lease by at least one sweep. Returns { leases, fences },
    /// or { -1, 0 } when not the janitor.
    /// </summary>
    internal const string RemoveOrphansScript = """
        if not holds(KEYS[1], ARGV[1]) then return { -1, 0 } end
        local leases = 0
        local fences = 0
        for i = 2, #ARGV do
          if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 0 then
            local lease = KEYS[2 * i - 1]
            local fence = KEYS[2 * i]
            if redis.call('DEL', lease) == 1 then
              leases = leases + 1
            else
              fences = fences + redis.call('DEL', fence)
            end
          end
        end
        return { leases, fences }
        """;

    private const int ChunkSize = 100;
    private const string RemoveDeadNodesLua = LuaHelpers.Prelude + RemoveDeadNodesScript;
    private const string RemoveOrphansLua = LuaHelpers.Prelude + RemoveOrphansScript;
    private static readonly RedisScript RemoveDeadNodes = new(RemoveDeadNodesLua);
    private static readonly RedisScript RemoveOrphans = new(RemoveOrphansLua);

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly JanitorOptions _options;
    private readonly TimeSpan _heartbeatTtl;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly FleetMetrics _metrics;
    private readonly FleetStatusReader _reader;
    private readonly AssignmentStore _assignments;
    private readonly LeaderElection _election;
    // The loop's sweeps and those a trigger asks for (SweepNowAsync) never overlap.
    private readonly SemaphoreSlim _sweepGate = new(1, 1);
    private JanitorSweep? _last;
    private ActiveSessions? _assignmentSessions;
    // What the last sweep published or found already published (only touched under the sweep gate).
    private (long Version, string[] Live, IReadOnlyCollection<string> Active)? _lastChecked;
    private double _balanceEpsilon;
    private long _removedNodes;
    private long _removedLeases;
    private long _removedFences;
    private readonly TimeSpan _stopBound;
    private bool _cleanOrphans;

    /// <summary>Creates the janitor of one instance; it acts only once elected.</summary>
    /// <param name="redis">The connection.</param>
    /// <param name="keyPrefix">The fleet's key prefix.</param>
    /// <param name="instanceId">This instance's id.</param>
    /// <param name="heartbeatTtl">The fleet's heartbeat TTL: an instance is dead once its heartbeat expired longer ago than this (as the lease cycle trims).</param>
    /// <param name="options">Interval, scan page size, and the election's timings.</param>
    /// <param name="timeProvider">Clock.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="meterFactory">Metrics.</param>
    public FleetJanitor(IConnectionMultiplexer redis, string keyPrefix, string instanceId, TimeSpan heartbeatTtl, JanitorOptions options,
        TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(options);
        _redis = redis;
        _keys = new RedisKeys(keyPrefix);
        _options = options;
        _cleanOrphans = options.CleanOrphans;
        _heartbeatTtl = heartbeatTtl;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollLease.Janitor");
        _reader = new FleetStatusReader(redis, keyPrefix);
        _assignments = new AssignmentStore(redis, _keys);
        var election = (options.Election ?? new ElectionOptions()).WithRole(JanitorOptions.Role);
        election.KeyPrefix = keyPrefix;
        election.InstanceId = instanceId;
        _stopBound = election.CallbackTimeout;
        _election = new LeaderElection(redis, election, new ElectionCallbacks { OnPromote = RunAsync }, _time, loggerFactory, meterFactory);
        _metrics = new FleetMetrics(meterFactory, instanceId, () => _election.IsLeader ? Volatile.Read(ref _last) : null);
    }

    /// <summary>The janitor role's election.</summary>
    public LeaderElection Election => _election;

    /// <summary>True while this instance is the janitor.</summary>
    public bool IsJanitor => _election.IsLeader;

    /// <summary>This instance's last sweep, or null when it has never swept.</summary>
    public JanitorSweep? LastSweep => Volatile.Read(ref _last);

    /// <summary>Totals removed by this instance: (nodes, leases, fences).</summary>
    public (long Nodes, long Leases, long Fences) Removed => (Interlocked.Read(ref _removedNodes), Interlocked.Read(ref _removedLeases), Interlocked.Read(ref _removedFences));

    /// <summary>Joins the janitor election.</summary>
    /// <param name="cancellationToken">Cancels the start.</param>
    public Task StartAsync(CancellationToken cancellationToken = default) => _election.StartAsync(cancellationToken);

    /// <summary>Leaves the election, releasing the role so another instance takes over at once.</summary>
    /// <param name="cancellationToken">Abandons the waits.</param>
    public Task<bool> StopAsync(CancellationToken cancellationToken = default) =>
        _election.StopAsync(new ElectionStopOptions { DeleteKey = true, DemoteTimeout = _options.Election?.CallbackTimeout ?? TimeSpan.FromSeconds(5) }, cancellationToken);

    /// <summary>
    /// The fleet's sessions come from an application-supplied source, not the Redis catalog: the catalog set is then
    /// not the source of truth, so no lease or fence is cleaned as an orphan (the registry and gauges still are).
    /// </summary>
    internal void SessionsOutsideCatalog() => _cleanOrphans = false;

    /// <summary>
    /// Also publish the fleet's assignment after every sweep: computed from the last published one, the live
    /// instances and <paramref name="sessions"/>' active sessions with <paramref name="balanceEpsilon"/>, exactly as
    /// the instances plan, so they all follow the same previous owners and a join or leave moves only what it must.
    /// </summary>
    /// <param name="sessions">The fleet's session source (the same the lease managers read).</param>
    /// <param name="balanceEpsilon">The fleet's <c>PollLease:BalanceEpsilon</c>.</param>
    internal void PublishAssignments(ISessionSource sessions, double balanceEpsilon)
    {
        _assignmentSessions = new ActiveSessions(sessions, _logger);
        _balanceEpsilon = balanceEpsilon;
    }

    /// <summary>
    /// Sweeps now when this instance is the janitor (the Azure Functions timer calls this on whichever instance it
    /// lands), never at the same time as the janitor's own periodic sweep.
    /// </summary>
    /// <param name="cancellationToken">Cancels the sweep.</param>
    /// <returns>The sweep, or null when this instance is not the janitor or lost the role meanwhile.</returns>
    public Task<JanitorSweep?> SweepNowAsync(CancellationToken cancellationToken = default)
    {
        var token = _election.Token;
        return token == 0 ? Task.FromResult<JanitorSweep?>(null) : SweepAsync(token, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _election.DisposeAsync().ConfigureAwait(false);
        _sweepGate.Dispose();
    }

    /// <summary>The janitor's term: a sweep every interval until the term ends; the sweep in flight is then cancelled.</summary>
    private async Task RunAsync(ElectionTerm term)
    {
        var loop = new BackgroundLoop(_time);
        loop.Start(async ct =>
        {
            await SweepAsync(term.Token, ct).ConfigureAwait(false);
            return _options.Interval;
        }, e =>
        {
            // One failed sweep (Redis down, a malformed key) must not end the janitor's term.
            ElectionLog.JanitorFailed(_logger, e, _election.InstanceId);
            return _options.Interval;
        });
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, _time, term.Leadership).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (term.Leadership.IsCancellationRequested)
        {
            // The term ended.
        }
        // Each Redis call of a sweep ends at once on cancellation; a sweep's own work is bounded by its chunks.
        if (!await loop.StopAsync(_stopBound).ConfigureAwait(false))
        {
            ElectionLog.JanitorFailed(_logger, new TimeoutException($"The sweep in flight did not end within {_stopBound} of the term's end."), _election.InstanceId);
        }
    }

    /// <summary>One sweep under janitor token <paramref name="token"/>; null when the token is no longer current.</summary>
    internal async Task<JanitorSweep?> SweepAsync(long token, CancellationToken cancellationToken)
    {
        await _sweepGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SweepCoreAsync(token, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sweepGate.Release();
        }
    }

    private async Task<JanitorSweep?> SweepCoreAsync(long token, CancellationToken cancellationToken)
    {
        // A paused or partitioned leader may have lost the role without knowing: check it right before acting; the scripts check it again, atomically, for every write.
        if (!await _election.ValidateTokenAsync(token, cancellationToken).ConfigureAwait(false))
        {
            ElectionLog.JanitorFenced(_logger, _election.InstanceId);
            return null;
        }
        var expected = LeaseValue.Format(_election.InstanceId, token);
        var status = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var db = _redis.GetDatabase();

        var cutoff = status.ServerTime.ToUnixTimeMilliseconds() - (long)_heartbeatTtl.TotalMilliseconds;
        var dead = status.Nodes.Where(n => !n.Live && status.ServerTime.ToUnixTimeMilliseconds() + (long)n.HeartbeatExpiresIn.TotalMilliseconds < cutoff)
            .Select(n => n.InstanceId).ToArray();
        var removedNodes = 0;
        foreach (var chunk in dead.Chunk(ChunkSize))
        {
            var keys = new RedisKey[2 + chunk.Length];
            keys[0] = _election.Key;
            keys[1] = _keys.Nodes;
            var args = new RedisValue[2 + chunk.Length];
            args[0] = expected;
            args[1] = (long)_heartbeatTtl.TotalMilliseconds;
            for (var i = 0; i < chunk.Length; i++)
            {
                keys[2 + i] = _keys.Node(chunk[i]);
                args[2 + i] = chunk[i];
            }
            var n = (long)await RemoveDeadNodes.EvaluateAsync(db, keys, args).WaitAsync(cancellationToken).ConfigureAwait(false);
            if (n < 0)
            {
                ElectionLog.JanitorFenced(_logger, _election.InstanceId);
                return null;
            }
            removedNodes += (int)n;
        }

        var (removedLeases, removedFences) = (0, 0);
        // An empty catalog with leases around means sessions come from somewhere else (a static directory): then
        // every lease would look orphaned, so nothing is cleaned.
        var server = _cleanOrphans && status.Leases.Count > 0 ? await ServerAsync(db).ConfigureAwait(false) : null;
        if (server is not null)
        {
            var catalog = status.Leases.Select(l => l.SessionId).ToHashSet(StringComparer.Ordinal);
            var orphans = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var prefix in new[] { _keys.LeasePrefix, _keys.FencePrefix })
            {
                await foreach (var key in server.KeysAsync(db.Database, prefix + "*", _options.ScanPageSize).WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    var id = key.ToString()[prefix.Length..];
                    if (!catalog.Contains(id))
                    {
                        orphans.Add(id);
                    }
                }
            }
            foreach (var chunk in orphans.Chunk(ChunkSize))
            {
                var keys = new RedisKey[2 + 2 * chunk.Length];
                keys[0] = _election.Key;
                keys[1] = _keys.Sessions;
                var args = new RedisValue[1 + chunk.Length];
                args[0] = expected;
                for (var i = 0; i < chunk.Length; i++)
                {
                    keys[2 + 2 * i] = _keys.Lease(chunk[i]);
                    keys[3 + 2 * i] = _keys.Fence(chunk[i]);
                    args[1 + i] = chunk[i];
                }
                var r = (RedisResult[])(await RemoveOrphans.EvaluateAsync(db, keys, args).WaitAsync(cancellationToken).ConfigureAwait(false))!;
                if ((long)r[0] < 0)
                {
                    ElectionLog.JanitorFenced(_logger, _election.InstanceId);
                    return null;
                }
                removedLeases += (int)(long)r[0];
                removedFences += (int)(long)r[1];
            }
        }

        var counts = status.CountsByOwner;
        var sweep = new JanitorSweep(status.ServerTime, removedNodes, removedLeases, removedFences, status.LiveCount, status.ActiveCount,
            status.Unowned.Count, counts.Count == 0 ? 0 : counts.Values.Max(), status.Ideal);
        Volatile.Write(ref _last, sweep);
        Interlocked.Add(ref _removedNodes, removedNodes);
        Interlocked.Add(ref _removedLeases, removedLeases);
        Interlocked.Add(ref _removedFences, removedFences);
        _metrics.Removed("node", removedNodes);
        _metrics.Removed("lease", removedLeases);
        _metrics.Removed("fence", removedFences);
        ElectionLog.JanitorSwept(_logger, _election.InstanceId, removedNodes, removedLeases, removedFences, sweep.LiveInstances, sweep.Sessions, sweep.Unowned, sweep.Busiest, sweep.Ideal);
        if (_assignmentSessions is { } sessions)
        {
            await PublishAssignmentAsync(sessions, expected, status, db, cancellationToken).ConfigureAwait(false);
        }
        return sweep;
    }

    private async Task PublishAssignmentAsync(ActiveSessions sessions, string expected, FleetStatus status, IDatabase db, CancellationToken cancellationToken)
    {
        var live = status.Nodes.Where(n => n.Live).Select(n => n.InstanceId).Order(StringComparer.Ordinal).ToArray();
        if (live.Length == 0)
        {
            return;
        }
        var catalogVersion = await db.StringGetAsync(_keys.SessionsVersion).WaitAsync(cancellationToken).ConfigureAwait(false);
        var active = await sessions.RefreshAsync(catalogVersion.IsNull ? "" : catalogVersion.ToString(), cancellationToken).ConfigureAwait(false);
        // The published assignment is a fixed point: with the same fleet, the same sessions and nobody else having
        // published since, computing it again returns it. Skip reading it (megabytes at 100,000 sessions) and the
        // computation on such sweeps, which are most of them.
        if (_lastChecked is { } last && ReferenceEquals(last.Active, active) && last.Live.SequenceEqual(live, StringComparer.Ordinal)
            && last.Version == await _assignments.ReadVersionAsync(cancellationToken).ConfigureAwait(false))
        {
            return;
        }
        var (version, published, error) = await _assignments.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (error is not null)
        {
            AssignmentLog.Malformed(_logger, _election.InstanceId, version, error);
        }
        var next = BalancedAssignment.Compute(live, active, _balanceEpsilon, published?.Owners);
        var changed = next.Owners.Count(kv => published is null || !published.Owners.TryGetValue(kv.Key, out var was) || was != kv.Value);
        if (published is not null && changed == 0 && published.Owners.Count == next.Owners.Count)
        {
            _lastChecked = (version, live, active);
            return;
        }
        var publishedVersion = await _assignments.PublishAsync(_election.Key, expected, next.Owners, cancellationToken).ConfigureAwait(false);
        if (publishedVersion is null)
        {
            ElectionLog.JanitorFenced(_logger, _election.InstanceId);
            return;
        }
        _lastChecked = (publishedVersion.Value, live, active);
        AssignmentLog.Published(_logger, _election.InstanceId, publishedVersion.Value, live.Length, next.Count, changed);
    }

    private async Task<IServer?> ServerAsync(IDatabase db)
    {
        // All keys share the prefix's hash tag: on a cluster they live on the one primary that owns its slot.
        var endpoint = await db.IdentifyEndpointAsync(_keys.Sessions).ConfigureAwait(false);
        if (endpoint is not null)
        {
            return _redis.GetServer(endpoint);
        }
        return _redis.GetServers().FirstOrDefault(s => s.IsConnected && !s.IsReplica);
    }
}
