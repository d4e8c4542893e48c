using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using PollLease.Sessions;

namespace PollCtl.Manifest;

/// <summary>One session in a manifest (<c>pollctl apply -f</c>).</summary>
/// <param name="Id">The session id.</param>
/// <param name="Target">What to poll.</param>
/// <param name="IntervalSeconds">Interval in seconds (4-120).</param>
/// <param name="Paused">Whether it is paused.</param>
/// <param name="Metadata">Optional string pairs.</param>
internal sealed record ManifestSession(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("target")] string Target,
    [property: JsonPropertyName("intervalSeconds")] double IntervalSeconds,
    [property: JsonPropertyName("paused")] bool Paused = false,
    [property: JsonPropertyName("metadata")] Dictionary<string, string>? Metadata = null);

/// <summary>What an apply changed (or would change, in a dry run).</summary>
/// <param name="Added">Sessions created.</param>
/// <param name="Updated">Sessions whose content changed.</param>
/// <param name="Removed">Sessions removed because an earlier apply of the same state file created them and the manifest no longer lists them.</param>
/// <param name="Unchanged">Sessions already as listed.</param>
internal sealed record ApplyResult(IReadOnlyList<string> Added, IReadOnlyList<string> Updated, IReadOnlyList<string> Removed, IReadOnlyList<string> Unchanged);

/// <summary>What the state file of <see cref="CatalogManifest"/> records: the sessions applies created.</summary>
/// <param name="Version">Format version (1).</param>
/// <param name="Created">Ids of sessions created by applies of this state file, and so theirs to remove.</param>
/// <param name="AppliedAt">When the last apply finished.</param>
internal sealed record ApplyState(
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("created")] IReadOnlyList<string> Created,
    [property: JsonPropertyName("appliedAt")] DateTimeOffset AppliedAt);

/// <summary>
/// Declarative apply: reconciles the Redis catalog with a manifest under a cross-process lock, adding and
/// updating what it lists and removing only sessions an earlier apply of the same state file created.
/// </summary>
internal static class CatalogManifest
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { AllowTrailingCommas = true, ReadCommentHandling = JsonCommentHandling.Skip };

    /// <summary>Reads a manifest: <c>{"sessions":[{"id","target","intervalSeconds","paused","metadata"}]}</c>. Every session is validated; duplicates are refused.</summary>
    /// <param name="json">The manifest text.</param>
    /// <param name="source">Its name for messages.</param>
    /// <exception cref="ArgumentException">Not a manifest, a duplicate id, or an invalid session (the message says which).</exception>
    public static IReadOnlyList<PollSession> Parse(string json, string source)
    {
        ManifestFile? file;
        try
        {
            file = JsonSerializer.Deserialize<ManifestFile>(json, Json);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{source} is not a valid manifest: {e.Message}", nameof(json), e);
        }
        if (file?.Sessions is null)
        {
            throw new ArgumentException($"{source} is not a valid manifest: it needs a \"sessions\" array.", nameof(json));
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var sessions = new List<PollSession>();
        foreach (var s in file.Sessions)
        {
            if (s is null || s.Id is null || s.Target is null)
            {
                throw new ArgumentException($"{source}: every session needs \"id\" and \"target\".", nameof(json));
            }
            if (!seen.Add(s.Id))
            {
                throw new ArgumentException($"{source} lists session '{s.Id}' more than once.", nameof(json));
            }
            if (double.IsNaN(s.IntervalSeconds) || s.IntervalSeconds <= 0 || s.IntervalSeconds > 3600)
            {
                throw new ArgumentException($"{source}: session '{s.Id}' intervalSeconds = {s.IntervalSeconds} is invalid: it must be between 4 and 120.", nameof(json));
            }
            var session = new PollSession(s.Id, s.Target, TimeSpan.FromSeconds(s.IntervalSeconds), s.Paused, s.Metadata ?? new Dictionary<string, string>());
            SessionCatalog.Validate(session);
            sessions.Add(session);
        }
        return sessions;
    }

    /// <summary>Applies <paramref name="sessions"/> to the catalog, serialized with other applies of the same state file.</summary>
    /// <param name="catalog">The catalog.</param>
    /// <param name="sessions">The manifest's sessions (from <see cref="Parse"/>).</param>
    /// <param name="statePath">The state file recording what applies created.</param>
    /// <param name="lockTimeout">How long to wait for another apply.</param>
    /// <param name="dryRun">Report without changing the catalog or the state.</param>
    /// <param name="loggerFactory">Logging of the state file and lock.</param>
    /// <param name="cancellationToken">Cancels the apply.</param>
    public static async Task<ApplyResult> ApplyAsync(SessionCatalog catalog, IReadOnlyList<PollSession> sessions, string statePath, TimeSpan lockTimeout, bool dryRun = false, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(sessions);
        await using var held = await StateFileLock.AcquireAsync(statePath, lockTimeout, loggerFactory: loggerFactory, cancellationToken: cancellationToken).ConfigureAwait(false);
        var state = new StateFile(statePath, loggerFactory);
        var previous = await state.LoadAsync<ApplyState>(s => s.Version == 1 && s.Created is not null, cancellationToken).ConfigureAwait(false);
        var created = new HashSet<string>(previous?.Created ?? [], StringComparer.Ordinal);

        var added = new List<string>();
        var updated = new List<string>();
        var unchanged = new List<string>();
        foreach (var session in sessions)
        {
            var existing = await catalog.GetAsync(session.Id, cancellationToken).ConfigureAwait(false);
            if (existing is null)
            {
                added.Add(session.Id);
                created.Add(session.Id);
            }
            else if (Same(existing, session))
            {
                unchanged.Add(session.Id);
                continue;
            }
            else
            {
                updated.Add(session.Id);
            }
            if (!dryRun)
            {
                await catalog.UpsertAsync(session, cancellationToken).ConfigureAwait(false);
            }
        }
        var listed = sessions.Select(s => s.Id).ToHashSet(StringComparer.Ordinal);
        var removed = created.Where(id => !listed.Contains(id)).Order(StringComparer.Ordinal).ToList();
        if (!dryRun)
        {
            foreach (var id in removed)
            {
                await catalog.RemoveAsync(id, cancellationToken).ConfigureAwait(false);
            }
            created.ExceptWith(removed);
            await state.SaveAsync(new ApplyState(1, created.Order(StringComparer.Ordinal).ToList(), DateTimeOffset.UtcNow), cancellationToken).ConfigureAwait(false);
        }
        return new ApplyResult(added, updated, removed, unchanged);
    }

    private static bool Same(PollSession a, PollSession b) =>
        a.Target == b.Target && a.Interval == b.Interval && a.Paused == b.Paused
        && a.Metadata.Count == b.Metadata.Count && a.Metadata.All(kv => b.Metadata.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private sealed record ManifestFile([property: JsonPropertyName("sessions")] List<ManifestSession?>? Sessions);
}
