namespace PollLease.Sessions;

/// <summary>
/// Where an instance's sessions come from: the lease manager leases the active (not paused) ones, the poll loop
/// polls the ones it holds with their target and interval, and the janitor publishes the fleet's assignment over
/// them, all from this one answer. The Redis <see cref="SessionCatalog"/> implements it and is the default;
/// register your own (or a <see cref="StaticSessionSource"/>) before <c>AddPollLease</c> to take sessions from
/// elsewhere.
/// </summary>
/// <remarks>
/// Every instance of a fleet must see the same sessions, or two instances would plan different assignments.
/// An entry whose key is not a valid session id (<see cref="SessionIds"/>), whose record's id differs from its key,
/// or whose interval is outside <see cref="PollSession.MinInterval"/>..<see cref="PollSession.MaxInterval"/> is
/// skipped and logged. When a call throws, the lease manager logs it and keeps the previous answer until a later
/// call succeeds.
/// </remarks>
public interface ISessionSource
{
    /// <summary>
    /// Every session by id, paused ones included. Called once per lease cycle (and once per janitor sweep when the
    /// janitor publishes assignments) with the Redis catalog's version as last read (<c>{prefix}:sessions:version</c>,
    /// in the lease cycle's round trip; empty when unset): a source that mirrors the catalog may return what it
    /// returned last while the version is unchanged; any other source caches as it sees fit. Return the same
    /// dictionary instance while nothing changed: a new instance makes the lease manager recompute its active set and
    /// plan.
    /// </summary>
    /// <param name="catalogVersion">The Redis catalog's version as last read.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyDictionary<string, PollSession>> GetSessionsAsync(string catalogVersion, CancellationToken cancellationToken);
}
