namespace PollLease.Coordination;

/// <summary>How a cycle touches this instance's registry entry (the heartbeat every lease it holds hangs on).</summary>
internal enum HeartbeatMode
{
    /// <summary>No heartbeat: only for tools and tests acting on keys without being an instance.</summary>
    None = 0,

    /// <summary>Move the heartbeat on; report when it had already lapsed (then every lease held was given up).</summary>
    Beat = 1,

    /// <summary>Beat and announce <c>joined</c>.</summary>
    Register = 2,

    /// <summary>Release everything this instance's index names, leave the registry, announce <c>left</c>.</summary>
    Deregister = -1,
}

/// <summary>A lease this instance holds, as a cycle sends it: its value is <c>instance|Token</c>.</summary>
/// <param name="SessionId">The session.</param>
/// <param name="Token">The fencing token it was acquired with.</param>
/// <param name="PollStartMs">Server time (ms) of a poll start to record with it; 0 for none.</param>
internal readonly record struct HeldLease(string SessionId, long Token, long PollStartMs = 0);

/// <summary>One cycle's request. Every list is O(changes), never O(leases held): renewing is the heartbeat.</summary>
/// <param name="Heartbeat">What happens to the registry entry.</param>
/// <param name="Refresh">Leases whose safety expiry is moved on (a rolling slice) or whose poll start is recorded.</param>
/// <param name="Acquire">Sessions to try to take.</param>
/// <param name="Release">Leases to give back (compare value, then delete).</param>
internal sealed record CycleRequest(
    HeartbeatMode Heartbeat,
    IReadOnlyList<HeldLease> Refresh,
    IReadOnlyList<string> Acquire,
    IReadOnlyList<HeldLease> Release);

/// <summary>An attempt to acquire: a token, or the current holder's value and how long until it can be taken.</summary>
/// <param name="Token">The new fencing token; 0 when not acquired.</param>
/// <param name="Holder">The value found (normally <c>owner|token</c>); null when acquired or not tried (the data-loss quarantine).</param>
/// <param name="HolderRemaining">Until the holder's heartbeat expires (or, for a value that is no lease, its PTTL).</param>
/// <param name="PreviousPollMs">Server time (ms) the session's last poll started, by any owner; 0 when unknown.</param>
internal readonly record struct AcquireOutcome(long Token, string? Holder, TimeSpan HolderRemaining, long PreviousPollMs);

/// <summary>One cycle's answer, fields named as in <see cref="CycleScript.Out"/>.</summary>
/// <param name="ServerTimeMs">Redis TIME when the script ran.</param>
/// <param name="Lapsed">This instance's heartbeat had expired or was missing: every lease it held was deleted.</param>
/// <param name="LiveNodes">Instances whose heartbeat is ahead of server time, sorted.</param>
/// <param name="HeartbeatExpiry">Each live instance's heartbeat expiry (server ms): when its leases may be taken.</param>
/// <param name="RefreshFailed">Per refreshed lease: null when still ours, else the value found ("" when missing).</param>
/// <param name="Acquire">Per session asked for.</param>
/// <param name="Released">Per lease released: true when Redis held it and deleted it.</param>
/// <param name="Swept">Leases deleted through this instance's index (on a lapse or on deregistering).</param>
/// <param name="CatalogVersion">The session catalog's version.</param>
/// <param name="Epoch">The fleet's data epoch (<see cref="DataLossGuard"/>).</param>
/// <param name="Quarantine">How long nothing may be acquired yet after Redis lost data; zero normally.</param>
internal sealed record CycleResponse(
    long ServerTimeMs,
    bool Lapsed,
    IReadOnlyList<string> LiveNodes,
    IReadOnlyDictionary<string, long> HeartbeatExpiry,
    string?[] RefreshFailed,
    AcquireOutcome[] Acquire,
    bool[] Released,
    int Swept,
    string CatalogVersion,
    string Epoch = "",
    TimeSpan Quarantine = default);

/// <summary>The fixed values of one instance's calls.</summary>
/// <param name="Keys">Key layout.</param>
/// <param name="InstanceId">This instance.</param>
/// <param name="LeaseTtlMs">Heartbeat length.</param>
/// <param name="HeartbeatTtlMs">Registry grace and metadata PX.</param>
/// <param name="KeyTtlMs">Safety PX of lease keys.</param>
/// <param name="Metadata">Node metadata JSON.</param>
internal sealed record CycleContext(RedisKeys Keys, string InstanceId, long LeaseTtlMs, long HeartbeatTtlMs, long KeyTtlMs, string Metadata);

/// <summary>What applying one reply changed.</summary>
/// <param name="Acquired">Leases acquired.</param>
/// <param name="Renewed">Leases kept by the heartbeat.</param>
/// <param name="Lost">Leases lost.</param>
/// <param name="NodeDropped">An instance left the live view (its sessions are free: plan again now).</param>
/// <param name="Failovers">Sessions taken from a holder that stopped heartbeating without releasing.</param>
internal sealed record CycleApplied(int Acquired, int Renewed, int Lost, bool NodeDropped, IReadOnlyList<(string Session, long Token, string From)> Failovers);
