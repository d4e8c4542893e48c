namespace PollLease.Sessions;

/// <summary>
/// Where a lease manager learns which sessions exist and are active (not paused). The Redis session catalog
/// implements it; implement it yourself to take sessions from elsewhere.
/// </summary>
public interface ISessionDirectory
{
    /// <summary>
    /// The ids of the sessions that should be polled now. Called once per lease cycle with the catalog version
    /// the cycle read from Redis (<c>{prefix}:sessions:version</c>, empty when unset), so an implementation can
    /// return a cached list while the version is unchanged. Every id must satisfy <see cref="SessionIds.IsValid"/>.
    /// </summary>
    /// <param name="catalogVersion">The catalog version seen by the last cycle.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyCollection<string>> GetActiveSessionIdsAsync(string catalogVersion, CancellationToken cancellationToken);
}
