using System.Globalization;
using PollLease.Coordination;
using StackExchange.Redis;

namespace PollLease.Assignment;

/// <summary>Reads and publishes the fleet's <see cref="PublishedAssignment"/> (keys <c>{prefix}:assignment</c> and <c>:assignment:version</c>).</summary>
internal sealed class AssignmentStore
{
    /// <summary>
    /// KEYS: the publisher's leader key, assignment, version. ARGV: the leader value the publisher must still hold,
    /// the JSON, the events channel. Returns the new version, or -1 when the publisher no longer holds its role
    /// (a janitor that lost the role must not overwrite its successor's assignment).
    /// </summary>
    internal const string PublishScript = """
        if not holds(KEYS[1], ARGV[1]) then
          return -1
        end
        redis.call('SET', KEYS[2], ARGV[2])
        local v = redis.call('INCR', KEYS[3])
        redis.call('PUBLISH', ARGV[3], 'assignment|' .. v)
        return v
        """;

    private const string PublishLua = LuaHelpers.Prelude + PublishScript;
    private static readonly RedisScript Publish = new(PublishLua);

    private readonly IConnectionMultiplexer _redis;
    private readonly RedisKeys _keys;

    public AssignmentStore(IConnectionMultiplexer redis, RedisKeys keys)
    {
        _redis = redis;
        _keys = keys;
    }

    public async Task<long> ReadVersionAsync(CancellationToken cancellationToken)
    {
        var value = await _redis.GetDatabase().StringGetAsync(_keys.AssignmentVersion).WaitAsync(cancellationToken).ConfigureAwait(false);
        return value.IsNull ? 0 : ParseVersion(value);
    }

    /// <summary>The published assignment and its version; a null assignment when none is published or it is malformed (then Error says why).</summary>
    public async Task<(long Version, PublishedAssignment? Assignment, string? Error)> ReadAsync(CancellationToken cancellationToken)
    {
        var values = await _redis.GetDatabase().StringGetAsync([_keys.AssignmentVersion, _keys.Assignment]).WaitAsync(cancellationToken).ConfigureAwait(false);
        var version = values[0].IsNull ? 0 : ParseVersion(values[0]);
        if (values[1].IsNull)
        {
            return (version, null, null);
        }
        var assignment = PublishedAssignment.Parse(version, values[1].ToString(), out var error);
        return (version, assignment, error);
    }

    /// <summary>Publishes <paramref name="owners"/> while <paramref name="leaderKey"/> holds <paramref name="leaderValue"/>; the new version, or null when it no longer does.</summary>
    public async Task<long?> PublishAsync(RedisKey leaderKey, string leaderValue, IReadOnlyDictionary<string, string> owners, CancellationToken cancellationToken)
    {
        var result = await Publish.EvaluateAsync(
            _redis.GetDatabase(),
            [leaderKey, _keys.Assignment, _keys.AssignmentVersion],
            [leaderValue, PublishedAssignment.Serialize(owners), _keys.Root + ":events"]).WaitAsync(cancellationToken).ConfigureAwait(false);
        var version = (long)result;
        return version < 0 ? null : version;
    }

    private static long ParseVersion(RedisValue value) =>
        long.TryParse(value.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1;
}
