namespace PollLease.Sessions;

/// <summary>
/// Where the poll scheduler reads the sessions it may poll (targets, intervals, paused flags). The Redis
/// session catalog implements it next to <see cref="ISessionDirectory"/>.
/// </summary>
public interface IPollSessionSource
{
    /// <summary>
    /// Every session in the catalog by id, paused ones included (they are skipped and counted). Called once per
    /// scheduler tick, so implementations should cache and re-read only on change.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    ValueTask<IReadOnlyDictionary<string, PollSession>> GetSessionsAsync(CancellationToken cancellationToken);
}
