using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PollLease.Coordination;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Sessions;

/// <summary>
/// The session catalog in Redis: the set <c>{prefix}:sessions</c>, one hash <c>{prefix}:session:{id}</c> per
/// session (<c>target</c>, <c>interval_ms</c>, <c>paused</c>, <c>metadata</c> JSON), and the counter
/// <c>{prefix}:sessions:version</c>, bumped by every change in the same script. Lease cycles read the
/// version in their round trip, so instances re-read the catalog only when it changed.
/// </summary>
/// <remarks>
/// A malformed session hash (written by hand or by an older tool) is skipped and logged, never fatal. All
/// members are thread-safe.
/// </remarks>
public sealed class SessionCatalog : ISessionSource
{
    /// <summary>Longest target accepted.</summary>
    public const int MaxTargetLength = 2048;

    /// <summary>Most metadata entries per session.</summary>
    public const int MaxMetadataEntries = 32;

    /// <summary>KEYS: set, hash, version. ARGV: mode (add|update|put), id, target, interval ms, paused, metadata. Returns 1, or 0 when add found it present / update found it missing.</summary>
    internal const string PutScript = """
        local exists = redis.call('EXISTS', KEYS[2]) == 1
        if (ARGV[1] == 'add' and exists) or (ARGV[1] == 'update' and not exists) then
          return 0
        end
        redis.call('HSET', KEYS[2], 'target', ARGV[3], 'interval_ms', ARGV[4], 'paused', ARGV[5], 'metadata', ARGV[6])
        redis.call('SADD', KEYS[1], ARGV[2])
        redis.call('INCR', KEYS[3])
        return 1
        """;

    /// <summary>KEYS: hash, version. ARGV: paused flag. Returns 1, or 0 when the session does not exist.</summary>
    internal const string PauseScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then
          return 0
        end
        redis.call('HSET', KEYS[1], 'paused', ARGV[1])
        redis.call('INCR', KEYS[2])
        return 1
        """;

    /// <summary>KEYS: set, hash, version. ARGV: id. Returns 1, or 0 when the session did not exist.</summary>
    internal const string RemoveScript = """
        local removed = redis.call('SREM', KEYS[1], ARGV[1]) + redis.call('DEL', KEYS[2])
        if removed == 0 then
          return 0
        end
        redis.call('INCR', KEYS[3])
        return 1
        """;

    private static readonly RedisScript Put = new(PutScript);
    private static readonly RedisScript Pause = new(PauseScript);
    private static readonly RedisScript Remove = new(RemoveScript);

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly TimeSpan _defaultInterval;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private Snapshot? _snapshot;

    /// <summary>Creates a catalog over the fleet's Redis.</summary>
    /// <param name="redis">The connection.</param>
    /// <param name="keyPrefix">The fleet's key prefix (<see cref="PollLeaseOptions.KeyPrefix"/>).</param>
    /// <param name="defaultInterval">Interval for sessions added without one (4-120 s).</param>
    /// <param name="timeProvider">Clock for the cache's age.</param>
    /// <param name="loggerFactory">Logging (skipped malformed sessions).</param>
    public SessionCatalog(IConnectionMultiplexer redis, string keyPrefix, TimeSpan? defaultInterval = null, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(redis);
        _redis = redis;
        _keys = new RedisKeys(keyPrefix); // validates the prefix
        _defaultInterval = defaultInterval ?? TimeSpan.FromSeconds(30);
        ValidateInterval(_defaultInterval, nameof(defaultInterval));
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollLease.Sessions");
    }

    /// <summary>A cached catalog is re-read after this long even when the version looks unchanged (e.g. Redis restarted empty).</summary>
    public static TimeSpan MaxCacheAge { get; } = TimeSpan.FromSeconds(60);

    /// <summary>Creates a session with the default interval, not paused, without metadata.</summary>
    /// <param name="id">The session id.</param>
    /// <param name="target">What to poll.</param>
    /// <param name="interval">How often (4-120 s); the default interval when null.</param>
    /// <param name="metadata">Optional string pairs for handlers.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The session as stored.</returns>
    /// <exception cref="ArgumentException">A field is invalid (the message names it and the rule).</exception>
    /// <exception cref="InvalidOperationException">A session with that id exists.</exception>
    public async Task<PollSession> AddAsync(string id, string target, TimeSpan? interval = null, IReadOnlyDictionary<string, string>? metadata = null, CancellationToken cancellationToken = default)
    {
        var session = new PollSession(id, target, interval ?? _defaultInterval, false, metadata ?? new Dictionary<string, string>());
        if (!await PutAsync("add", session, cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException($"Session '{id}' already exists; use update.");
        }
        return session;
    }

    /// <summary>Replaces a session's target, interval, paused flag and metadata.</summary>
    /// <param name="session">The new content; its id names the session.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="ArgumentException">A field is invalid.</exception>
    /// <exception cref="KeyNotFoundException">No such session.</exception>
    public async Task UpdateAsync(PollSession session, CancellationToken cancellationToken = default)
    {
        if (!await PutAsync("update", session, cancellationToken).ConfigureAwait(false))
        {
            throw new KeyNotFoundException($"Session '{session.Id}' does not exist.");
        }
    }

    /// <summary>Creates or replaces a session (declarative apply).</summary>
    /// <param name="session">The content.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public Task UpsertAsync(PollSession session, CancellationToken cancellationToken = default) => PutAsync("put", session, cancellationToken);

    /// <summary>Pauses a session: it stops being polled and its lease is released within a cycle.</summary>
    /// <param name="id">The session id.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="KeyNotFoundException">No such session.</exception>
    public Task PauseAsync(string id, CancellationToken cancellationToken = default) => SetPausedAsync(id, true, cancellationToken);

    /// <summary>Resumes a paused session.</summary>
    /// <param name="id">The session id.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="KeyNotFoundException">No such session.</exception>
    public Task ResumeAsync(string id, CancellationToken cancellationToken = default) => SetPausedAsync(id, false, cancellationToken);

    /// <summary>Removes a session. Returns false when it did not exist.</summary>
    /// <param name="id">The session id.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async Task<bool> RemoveAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(id, nameof(id));
        var result = await Remove.EvaluateAsync(_redis.GetDatabase(), [_keys.Sessions, _keys.Session(id), _keys.SessionsVersion], [id]).WaitAsync(cancellationToken).ConfigureAwait(false);
        Invalidate();
        return (long)result == 1;
    }

    /// <summary>Reads one session, or null when it does not exist or its hash is malformed (logged).</summary>
    /// <param name="id">The session id.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async Task<PollSession?> GetAsync(string id, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(id, nameof(id));
        var fields = await _redis.GetDatabase().HashGetAllAsync(_keys.Session(id)).WaitAsync(cancellationToken).ConfigureAwait(false);
        return fields.Length == 0 ? null : Decode(id, fields);
    }

    /// <summary>Reads every session (paused included), sorted by id, in two round trips. Malformed ones are skipped and logged.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async Task<IReadOnlyList<PollSession>> ListAsync(CancellationToken cancellationToken = default)
    {
        var snapshot = await LoadAsync(cancellationToken).ConfigureAwait(false);
        return snapshot.All.Values.OrderBy(s => s.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Every session by id (paused included), from a cached read of the catalog: re-read when
    /// <paramref name="catalogVersion"/> differs from the version the cache was read at, when a change made through
    /// this catalog invalidated it, or after <see cref="MaxCacheAge"/>. The same dictionary is returned while the cache
    /// holds.
    /// </summary>
    /// <param name="catalogVersion">The catalog version the last lease cycle read (empty when unset).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async ValueTask<IReadOnlyDictionary<string, PollSession>> GetSessionsAsync(string catalogVersion, CancellationToken cancellationToken)
    {
        var snapshot = Volatile.Read(ref _snapshot);
        if (snapshot is null || snapshot.Version != catalogVersion || _time.GetElapsedTime(snapshot.LoadedAt) > MaxCacheAge)
        {
            snapshot = await LoadAsync(cancellationToken).ConfigureAwait(false);
        }
        return snapshot.All;
    }

    private async Task<bool> PutAsync(string mode, PollSession session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        Validate(session);
        var metadata = JsonSerializer.Serialize(session.Metadata);
        var result = await Put.EvaluateAsync(
                _redis.GetDatabase(),
                [_keys.Sessions, _keys.Session(session.Id), _keys.SessionsVersion],
                [mode, session.Id, session.Target, (long)session.Interval.TotalMilliseconds, session.Paused ? "1" : "0", metadata])
            .WaitAsync(cancellationToken).ConfigureAwait(false);
        Invalidate();
        return (long)result == 1;
    }

    private async Task SetPausedAsync(string id, bool paused, CancellationToken cancellationToken)
    {
        SessionIds.Validate(id, nameof(id));
        var result = await Pause.EvaluateAsync(_redis.GetDatabase(), [_keys.Session(id), _keys.SessionsVersion], [paused ? "1" : "0"]).WaitAsync(cancellationToken).ConfigureAwait(false);
        Invalidate();
        if ((long)result == 0)
        {
            throw new KeyNotFoundException($"Session '{id}' does not exist.");
        }
    }

    private void Invalidate() => Volatile.Write(ref _snapshot, null);

    private async Task<Snapshot> LoadAsync(CancellationToken cancellationToken)
    {
        // Concurrent reloads are harmless (each publishes a consistent snapshot), so no gate.
        var db = _redis.GetDatabase();
        // Version first: a change racing this read bumps it again, so the next cycle re-reads.
        var version = await db.StringGetAsync(_keys.SessionsVersion).WaitAsync(cancellationToken).ConfigureAwait(false);
        var ids = await db.SetMembersAsync(_keys.Sessions).WaitAsync(cancellationToken).ConfigureAwait(false);
        var batch = db.CreateBatch();
        var reads = new List<(string Id, Task<HashEntry[]> Fields)>(ids.Length);
        foreach (var value in ids)
        {
            var id = value.ToString();
            if (!SessionIds.IsValid(id))
            {
                SessionLog.MalformedSession(_logger, id.Length > 80 ? id[..80] : id, "the id is not a valid session id");
                continue;
            }
            reads.Add((id, batch.HashGetAllAsync(_keys.Session(id))));
        }
        batch.Execute();
        var all = new Dictionary<string, PollSession>(reads.Count, StringComparer.Ordinal);
        foreach (var (id, task) in reads)
        {
            var fields = await task.WaitAsync(cancellationToken).ConfigureAwait(false);
            var session = fields.Length == 0 ? null : Decode(id, fields);
            if (session is not null)
            {
                all[id] = session;
            }
        }
        var snapshot = new Snapshot(version.IsNull ? "" : version.ToString(), all, _time.GetTimestamp());
        Volatile.Write(ref _snapshot, snapshot);
        return snapshot;
    }

    private PollSession? Decode(string id, HashEntry[] fields)
    {
        var map = fields.ToDictionary(f => f.Name.ToString(), f => f.Value.ToString(), StringComparer.Ordinal);
        if (!map.TryGetValue("target", out var target) || string.IsNullOrEmpty(target))
        {
            SessionLog.MalformedSession(_logger, id, "target is missing");
            return null;
        }
        if (!map.TryGetValue("interval_ms", out var intervalText) || !long.TryParse(intervalText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var intervalMs))
        {
            SessionLog.MalformedSession(_logger, id, "interval_ms is missing or not a number");
            return null;
        }
        var interval = TimeSpan.FromMilliseconds(intervalMs);
        if (interval < PollSession.MinInterval || interval > PollSession.MaxInterval)
        {
            SessionLog.MalformedSession(_logger, id, $"interval_ms {intervalMs} is outside 4000-120000");
            return null;
        }
        var paused = map.TryGetValue("paused", out var pausedText) && pausedText is "1" or "true";
        IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
        if (map.TryGetValue("metadata", out var json) && !string.IsNullOrEmpty(json))
        {
            try
            {
                metadata = JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? new Dictionary<string, string>();
            }
            catch (JsonException)
            {
                SessionLog.MalformedSession(_logger, id, "metadata is not a JSON object of strings");
                return null;
            }
        }
        return new PollSession(id, target, interval, paused, metadata);
    }

    /// <summary>Checks a session's fields; throws <see cref="ArgumentException"/> naming the field and the rule.</summary>
    /// <param name="session">The session.</param>
    public static void Validate(PollSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        SessionIds.Validate(session.Id, "id");
        if (string.IsNullOrWhiteSpace(session.Target) || session.Target.Length > MaxTargetLength || session.Target.Any(char.IsControl))
        {
            throw new ArgumentException($"target of session '{session.Id}' is invalid: it must be 1 to {MaxTargetLength} characters without control characters.", nameof(session));
        }
        ValidateInterval(session.Interval, "interval");
        if (session.Metadata is null)
        {
            throw new ArgumentException($"metadata of session '{session.Id}' is invalid: it must not be null (use an empty dictionary).", nameof(session));
        }
        if (session.Metadata.Count > MaxMetadataEntries || session.Metadata.Any(kv => kv.Key.Length is 0 or > 64 || kv.Value is null || kv.Value.Length > 1024))
        {
            throw new ArgumentException($"metadata of session '{session.Id}' is invalid: at most {MaxMetadataEntries} entries, keys 1-64 characters, values up to 1024.", nameof(session));
        }
    }

    private static void ValidateInterval(TimeSpan interval, string field)
    {
        if (interval < PollSession.MinInterval || interval > PollSession.MaxInterval)
        {
            throw new ArgumentException($"{field} = {interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s is invalid: it must be between 4 and 120 s.", field);
        }
    }

    private sealed record Snapshot(string Version, IReadOnlyDictionary<string, PollSession> All, long LoadedAt);
}
