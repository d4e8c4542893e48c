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
/// skipped and logged; an exception keeps the previous answer (logged) until a later call succeeds.
/// </remarks>
public interface ISessionSource
{
    /// <summary>
    /// Every session by id, paused ones included. Called once per lease cycle (and once per janitor sweep when the
    /// janitor publishes assignments) with the catalog version that cycle's round trip read from Redis
    /// (<c>{prefix}:sessions:version</c>, empty when unset): an implementation may return what it returned last while
    /// the version is unchanged. Return the same dictionary instance while nothing changed: a new instance makes the
    /// lease manager recompute its active set and plan.
    /// </summary>
    /// <param name="catalogVersion">The Redis catalog's version as the last lease cycle read it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyDictionary<string, PollSession>> GetSessionsAsync(string catalogVersion, CancellationToken cancellationToken);
}
