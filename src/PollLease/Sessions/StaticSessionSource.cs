namespace PollLease.Sessions;

/// <summary>
/// Sessions held in memory, changeable at run time with <see cref="Set"/>: for sessions that come from your own
/// configuration or database rather than the Redis catalog. Every instance of the fleet must be given the same
/// sessions.
/// </summary>
public sealed class StaticSessionSource : ISessionSource
{
    /// <summary>The interval <see cref="FromIds"/> gives sessions when none is passed.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(30);

    private volatile IReadOnlyDictionary<string, PollSession> _sessions;

    /// <summary>Creates the source with an initial set of sessions (each validated).</summary>
    /// <param name="sessions">The sessions; ids must be distinct.</param>
    /// <exception cref="ArgumentException">A session is invalid (the message names the field and the rule) or an id appears twice.</exception>
    public StaticSessionSource(IEnumerable<PollSession> sessions) => _sessions = Validate(sessions);

    /// <summary>
    /// Creates a source of active sessions from ids alone, for an application that only needs them leased or whose
    /// handler knows what to poll from the id.
    /// </summary>
    /// <param name="ids">The session ids (duplicates are ignored).</param>
    /// <param name="interval">How often each is polled (4-120 s); <see cref="DefaultInterval"/> when null.</param>
    /// <param name="target">Every session's target; each session's own id when null.</param>
    /// <exception cref="ArgumentException">An id, the interval or the target is invalid (the message names it and the rule).</exception>
    public static StaticSessionSource FromIds(IEnumerable<string> ids, TimeSpan? interval = null, string? target = null)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var empty = new Dictionary<string, string>();
        return new StaticSessionSource(ids.Distinct(StringComparer.Ordinal)
            .Select(id => new PollSession(id, target ?? id, interval ?? DefaultInterval, false, empty)));
    }

    /// <summary>Replaces every session (each validated). Lease managers pick the change up in their next cycle.</summary>
    /// <param name="sessions">The sessions; ids must be distinct.</param>
    /// <exception cref="ArgumentException">A session is invalid or an id appears twice; the current sessions are kept.</exception>
    public void Set(IEnumerable<PollSession> sessions) => _sessions = Validate(sessions);

    /// <inheritdoc />
    public ValueTask<IReadOnlyDictionary<string, PollSession>> GetSessionsAsync(string catalogVersion, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_sessions);

    private static Dictionary<string, PollSession> Validate(IEnumerable<PollSession> sessions)
    {
        ArgumentNullException.ThrowIfNull(sessions);
        var byId = new Dictionary<string, PollSession>(StringComparer.Ordinal);
        foreach (var session in sessions)
        {
            if (session is null)
            {
                throw new ArgumentException("A session is null: every element must be a session.", nameof(sessions));
            }
            SessionCatalog.Validate(session);
            if (!byId.TryAdd(session.Id, session))
            {
                throw new ArgumentException($"Session id '{session.Id}' appears twice: ids must be distinct.", nameof(sessions));
            }
        }
        return byId;
    }
}
