using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PollLease.Coordination;
using PollLease.Sessions;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollLease.Messages;

/// <summary>
/// Per-session message log in the Redis list <c>{prefix}:messages:{session}</c>. An
/// append is one script call whatever the history length: it checks the writer's fencing token against the
/// session's current one, pushes the batch, refreshes the TTL and trims to the maximum length, atomically.
/// </summary>
public sealed class MessageLog
{
    /// <summary>
    /// KEYS: fence, messages. ARGV: token, ttl ms, max length, elements... Returns the new length, -1 with the
    /// current token when the writer's token is older, or -2 when the key still holds the legacy string format.
    /// </summary>
    internal const string AppendScript = """
        local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
        local token = tonumber(ARGV[1])
        if token < cur then
          return { -1, tostring(cur) }
        end
        local kind = redis.call('TYPE', KEYS[2])
        if type(kind) == 'table' then kind = kind['ok'] end
        if kind == 'string' then
          return { -2, '' }
        end
        local n = 0
        for i = 4, #ARGV do
          n = redis.call('RPUSH', KEYS[2], ARGV[i])
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
        local max = tonumber(ARGV[3])
        if n > max then
          redis.call('LTRIM', KEYS[2], -max, -1)
          n = max
        end
        return { n, '' }
        """;

    private static readonly RedisScript Append = new(AppendScript);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;
    private readonly MessageLogOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>Creates a message log over the fleet's Redis.</summary>
    /// <param name="redis">The connection.</param>
    /// <param name="keyPrefix">The fleet's key prefix (<see cref="PollLeaseOptions.KeyPrefix"/>).</param>
    /// <param name="options">Retention; validated here.</param>
    /// <param name="timeProvider">Clock for message timestamps.</param>
    /// <param name="loggerFactory">Logging (skipped elements, migrations).</param>
    public MessageLog(IConnectionMultiplexer redis, string keyPrefix, MessageLogOptions? options = null, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(redis);
        _keys = new RedisKeys(keyPrefix); // validates the prefix
        _options = options ?? new MessageLogOptions();
        MessageLogOptionsValidator.ThrowIfInvalid(_options);
        _redis = redis;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollLease.Messages");
    }

    /// <summary>The Redis key of a session's log (for humans and tools).</summary>
    /// <param name="sessionId">The session.</param>
    public string KeyOf(string sessionId)
    {
        SessionIds.Validate(sessionId);
        return _keys.Messages(sessionId).ToString();
    }

    /// <summary>
    /// Appends a batch atomically under a fencing token: all of it or nothing. Returns the log's length after
    /// the append (after trimming).
    /// </summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="token">The writer's fencing token (from its lease).</param>
    /// <param name="bodies">The messages, at least one.</param>
    /// <param name="cancellationToken">Cancels the wait (the script may still run).</param>
    /// <exception cref="StaleTokenException">A newer token exists: another instance owns the session now.</exception>
    /// <exception cref="RedisException">Redis failed; nothing is known to be written.</exception>
    public async Task<long> AppendAsync(string sessionId, long token, IReadOnlyList<string> bodies, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        ArgumentNullException.ThrowIfNull(bodies);
        if (bodies.Count == 0)
        {
            throw new ArgumentException("bodies must hold at least one message.", nameof(bodies));
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(token);
        var at = _time.GetUtcNow();
        var args = new RedisValue[3 + bodies.Count];
        args[0] = token;
        args[1] = (long)_options.Ttl.TotalMilliseconds;
        args[2] = _options.MaxLength;
        for (var i = 0; i < bodies.Count; i++)
        {
            ArgumentNullException.ThrowIfNull(bodies[i], nameof(bodies));
            args[3 + i] = JsonSerializer.Serialize(new LogMessage(token, at, bodies[i]), Json);
        }
        var keys = new RedisKey[] { _keys.Fence(sessionId), _keys.Messages(sessionId) };
        var db = _redis.GetDatabase();
        for (var attempt = 0; ; attempt++)
        {
            var result = (RedisResult[])(await Append.EvaluateAsync(db, keys, args).WaitAsync(cancellationToken).ConfigureAwait(false))!;
            var code = (long)result[0];
            if (code >= 0)
            {
                return code;
            }
            if (code == -1)
            {
                throw new StaleTokenException(sessionId, token, long.Parse((string)result[1]!, System.Globalization.CultureInfo.InvariantCulture));
            }
            if (attempt > 2)
            {
                throw new InvalidOperationException($"Session '{sessionId}': the legacy message key could not be migrated after {attempt} attempts.");
            }
            await MigrateAsync(db, sessionId, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads the last <paramref name="tail"/> messages (all when null), oldest first. Each element is decoded on
    /// its own: a malformed one is skipped and logged, the rest returned. A Redis failure throws; it is never an
    /// empty result. A legacy string-format log is migrated to a list first.
    /// </summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="tail">How many of the newest messages; null for all.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async Task<IReadOnlyList<LogMessage>> ReadAsync(string sessionId, int? tail = null, CancellationToken cancellationToken = default)
    {
        SessionIds.Validate(sessionId);
        if (tail is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(tail), tail, "tail must be at least 1.");
        }
        var db = _redis.GetDatabase();
        var key = _keys.Messages(sessionId);
        var type = await db.KeyTypeAsync(key).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (type == RedisType.String)
        {
            await MigrateAsync(db, sessionId, cancellationToken).ConfigureAwait(false);
        }
        var values = await db.ListRangeAsync(key, tail is null ? 0 : -tail.Value, -1).WaitAsync(cancellationToken).ConfigureAwait(false);
        var messages = new List<LogMessage>(values.Length);
        for (var i = 0; i < values.Length; i++)
        {
            if (TryDecode(values[i], out var message))
            {
                messages.Add(message);
            }
            else
            {
                MessagesLog.SkippedElement(_logger, sessionId, i, Preview(values[i]));
            }
        }
        return messages;
    }

    /// <summary>
    /// Logs written by earlier versions stay readable: a log stored the old way (a JSON array in a string key) becomes a list, in one transaction
    /// that only commits if the string is still the one read. Each old element is kept as a body with token 0.
    /// </summary>
    private async Task MigrateAsync(IDatabase db, string sessionId, CancellationToken cancellationToken)
    {
        var key = _keys.Messages(sessionId);
        var raw = await db.StringGetAsync(key).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (raw.IsNull)
        {
            return;
        }
        var elements = new List<RedisValue>();
        try
        {
            using var doc = JsonDocument.Parse((string)raw!);
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
            {
                throw new JsonException("the legacy value is not a JSON array");
            }
            foreach (var item in doc.RootElement.EnumerateArray())
            {
                elements.Add(JsonSerializer.Serialize(new LogMessage(0, null, item.GetRawText()), Json));
            }
        }
        catch (JsonException e)
        {
            MessagesLog.LegacyUnreadable(_logger, e, sessionId);
            throw new InvalidOperationException($"Session '{sessionId}': the legacy message key {key} is not a JSON array; it was left untouched.", e);
        }
        var tran = db.CreateTransaction();
        tran.AddCondition(Condition.StringEqual(key, raw));
        var delete = tran.KeyDeleteAsync(key);
        var push = elements.Count > 0 ? tran.ListRightPushAsync(key, elements.ToArray()) : Task.FromResult(0L);
        var expire = tran.KeyExpireAsync(key, _options.Ttl);
        if (await tran.ExecuteAsync().WaitAsync(cancellationToken).ConfigureAwait(false))
        {
            await Task.WhenAll(delete, push, expire).ConfigureAwait(false);
            MessagesLog.Migrated(_logger, sessionId, elements.Count);
        }
    }

    private static bool TryDecode(RedisValue value, out LogMessage message)
    {
        message = null!;
        try
        {
            var decoded = JsonSerializer.Deserialize<LogMessage>((string)value!, Json);
            if (decoded?.Body is null)
            {
                return false;
            }
            message = decoded;
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static string Preview(RedisValue value)
    {
        var text = value.ToString();
        return text.Length > 60 ? text[..60] + "..." : text;
    }
}
