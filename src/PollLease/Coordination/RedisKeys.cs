using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// The Redis key layout. Every key starts with the prefix in braces (<c>{poll}</c>), a shared hash tag,
/// so multi-key scripts stay in one slot on Redis Cluster and Azure Managed Redis.
/// </summary>
internal sealed class RedisKeys
{
    public RedisKeys(string prefix)
    {
        if (!KeySafety.IsSafe(prefix, 32))
        {
            throw new ArgumentException($"Key prefix '{prefix}' is invalid: it must be 1 to 32 characters of letters, digits, '.', '_' or '-'.", nameof(prefix));
        }
        Root = "{" + prefix + "}";
        Nodes = Root + ":nodes";
        NodePrefix = Root + ":node:";
        LeasePrefix = Root + ":lease:";
        FencePrefix = Root + ":fence:";
        PolledPrefix = Root + ":polled:";
        HeldPrefix = Root + ":held:";
        Sessions = Root + ":sessions";
        SessionPrefix = Root + ":session:";
        SessionsVersion = Root + ":sessions:version";
        MessagesPrefix = Root + ":messages:";
        LeaderPrefix = Root + ":leader:";
        Assignment = Root + ":assignment";
        AssignmentVersion = Root + ":assignment:version";
        Events = RedisChannel.Literal(Root + ":events");
        Epoch = Root + ":epoch";
    }

    /// <summary>The braced prefix, e.g. <c>{poll}</c>.</summary>
    public string Root { get; }

    /// <summary>Sorted set: member = instance id, score = heartbeat expiry in Redis server time (ms).</summary>
    public RedisKey Nodes { get; }

    /// <summary>Prefix of the per-node metadata keys (string with TTL).</summary>
    public string NodePrefix { get; }

    /// <summary>Prefix of the lease keys (<c>owner|token</c>, valid while the owner's heartbeat is; PX = the safety key TTL).</summary>
    public string LeasePrefix { get; }

    /// <summary>Prefix of the fence keys (last token issued for the session).</summary>
    public string FencePrefix { get; }

    /// <summary>Prefix of the per-session last-poll keys (server ms the last poll started, written by its owner).</summary>
    public string PolledPrefix { get; }

    /// <summary>Prefix of the per-instance lease index (set of the session ids the instance holds).</summary>
    public string HeldPrefix { get; }

    /// <summary>Set of session ids in the catalog.</summary>
    public RedisKey Sessions { get; }

    /// <summary>Prefix of the per-session hashes.</summary>
    public string SessionPrefix { get; }

    /// <summary>Counter bumped on every catalog change.</summary>
    public RedisKey SessionsVersion { get; }

    /// <summary>Prefix of the per-session message lists.</summary>
    public string MessagesPrefix { get; }

    /// <summary>Prefix of the leader-election keys.</summary>
    public string LeaderPrefix { get; }

    /// <summary>Pub/sub channel for released, joined and left events.</summary>
    public RedisChannel Events { get; }

    /// <summary>The assignment the janitor published (JSON: nodes and each session's owner).</summary>
    public RedisKey Assignment { get; }

    /// <summary>Incremented with every published assignment; instances poll it to notice a missed event.</summary>
    public RedisKey AssignmentVersion { get; }

    /// <summary>The fleet's data epoch (<c>id|quarantine-until|server</c>, no TTL): see <see cref="DataLossGuard"/>.</summary>
    public RedisKey Epoch { get; }

    public RedisKey Node(string instanceId) => NodePrefix + instanceId;

    public RedisKey Lease(string sessionId) => LeasePrefix + sessionId;

    public RedisKey Fence(string sessionId) => FencePrefix + sessionId;

    public RedisKey Polled(string sessionId) => PolledPrefix + sessionId;

    public RedisKey Held(string instanceId) => HeldPrefix + instanceId;

    public RedisKey Session(string sessionId) => SessionPrefix + sessionId;

    public RedisKey Messages(string sessionId) => MessagesPrefix + sessionId;

    public RedisKey Leader(string role) => LeaderPrefix + role;
}
