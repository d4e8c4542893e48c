using System.Globalization;
using Microsoft.Extensions.Logging;
using PollLease.Sessions;
using PollLease.Telemetry;

namespace PollLease.Coordination;

/// <summary>
/// The sessions read from one <see cref="ISessionSource"/>: every record, and the active (not paused) ids. A lease
/// manager refreshes it once per cycle and plans with <see cref="Current"/>, and its poll loop polls from
/// <see cref="All"/>, so what is leased and what is polled come from the same answer. The answer is checked and
/// turned into a set once per change (the planner looks every session up each cycle); a reference-equal answer
/// costs nothing.
/// </summary>
internal sealed class ActiveSessions(ISessionSource source, ILogger logger)
{
    private View _view = new(null, new Dictionary<string, PollSession>(StringComparer.Ordinal), new HashSet<string>(StringComparer.Ordinal));

    /// <summary>The active ids as of the last successful refresh.</summary>
    public IReadOnlySet<string> Current => Volatile.Read(ref _view).Active;

    /// <summary>Every usable session (paused included) as of the last successful refresh.</summary>
    public IReadOnlyDictionary<string, PollSession> All => Volatile.Read(ref _view).All;

    /// <summary>
    /// Reads the source and returns the active ids: the same set instance while the source answers with the same
    /// dictionary. Throws what the source throws, keeping the previous sessions.
    /// </summary>
    public async ValueTask<IReadOnlySet<string>> RefreshAsync(string catalogVersion, CancellationToken cancellationToken)
    {
        var answer = await source.GetSessionsAsync(catalogVersion, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"{source.GetType().Name}.GetSessionsAsync returned null; return an empty dictionary when there are no sessions.");
        var view = Volatile.Read(ref _view);
        if (!ReferenceEquals(answer, view.Source))
        {
            view = Check(answer);
            Volatile.Write(ref _view, view);
        }
        return view.Active;
    }

    private View Check(IReadOnlyDictionary<string, PollSession> answer)
    {
        var active = new HashSet<string>(StringComparer.Ordinal);
        List<string>? skipped = null;
        foreach (var (id, session) in answer)
        {
            if (Problem(id, session) is { } problem)
            {
                SessionLog.MalformedSession(logger, id.Length > 80 ? id[..80] : id, problem);
                (skipped ??= []).Add(id);
            }
            else if (!session.Paused)
            {
                active.Add(id);
            }
        }
        if (skipped is null)
        {
            return new View(answer, answer, active);
        }
        var usable = new Dictionary<string, PollSession>(answer, StringComparer.Ordinal);
        foreach (var id in skipped)
        {
            usable.Remove(id);
        }
        return new View(answer, usable, active);
    }

    /// <summary>
    /// Why a source's entry cannot be leased or polled safely, or null. The id becomes part of Redis keys, and an
    /// interval outside the bounds would poll far too often (or never).
    /// </summary>
    private static string? Problem(string id, PollSession? session)
    {
        if (!SessionIds.IsValid(id))
        {
            return "the id is not a valid session id";
        }
        if (session is null)
        {
            return "the record is null";
        }
        if (!string.Equals(session.Id, id, StringComparison.Ordinal))
        {
            return "the record's id differs from its key";
        }
        if (session.Interval < PollSession.MinInterval || session.Interval > PollSession.MaxInterval)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"interval {session.Interval.TotalSeconds:0.###} s is outside {PollSession.MinInterval.TotalSeconds:0}-{PollSession.MaxInterval.TotalSeconds:0} s");
        }
        return session.Target is null || session.Metadata is null ? "the target or the metadata is null" : null;
    }

    private sealed record View(IReadOnlyDictionary<string, PollSession>? Source, IReadOnlyDictionary<string, PollSession> All, IReadOnlySet<string> Active);
}
