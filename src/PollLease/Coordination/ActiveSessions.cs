using Microsoft.Extensions.Logging;
using PollLease.Sessions;
using PollLease.Telemetry;

namespace PollLease.Coordination;

/// <summary>
/// The active session ids a lease manager plans with, read from its <see cref="ISessionDirectory"/> once per cycle.
/// A failing directory keeps the previous list (logged); the planner looks every session up each cycle, so the
/// answer is turned into a set once per change rather than once per cycle.
/// </summary>
internal sealed class ActiveSessions(ISessionDirectory directory, ILogger logger, string instanceId)
{
    private IReadOnlyCollection<string> _current = new HashSet<string>(StringComparer.Ordinal);
    private IReadOnlyCollection<string>? _source;

    public IReadOnlyCollection<string> Current => Volatile.Read(ref _current);

    public async Task RefreshAsync(string catalogVersion, CancellationToken cancellationToken)
    {
        try
        {
            var active = await directory.GetActiveSessionIdsAsync(catalogVersion, cancellationToken).ConfigureAwait(false);
            if (!ReferenceEquals(active, _source))
            {
                _source = active;
                Volatile.Write(ref _current, active as IReadOnlySet<string> is not null ? active : new HashSet<string>(active, StringComparer.Ordinal));
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LeaseLog.SessionSourceFailed(logger, e, instanceId);
        }
    }
}
