namespace PollLease.Sessions;

/// <summary>A fixed set of session ids, changeable at run time with <see cref="Set"/>.</summary>
public sealed class StaticSessionDirectory : ISessionDirectory
{
    private volatile IReadOnlyCollection<string> _ids;

    /// <summary>Creates the directory with an initial set of ids (each validated).</summary>
    /// <param name="ids">The session ids.</param>
    public StaticSessionDirectory(IEnumerable<string> ids) => _ids = Validate(ids);

    /// <summary>Replaces the set of ids (each validated).</summary>
    /// <param name="ids">The session ids.</param>
    public void Set(IEnumerable<string> ids) => _ids = Validate(ids);

    /// <inheritdoc />
    public ValueTask<IReadOnlyCollection<string>> GetActiveSessionIdsAsync(string catalogVersion, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_ids);

    private static string[] Validate(IEnumerable<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var array = ids.Distinct(StringComparer.Ordinal).ToArray();
        foreach (var id in array)
        {
            SessionIds.Validate(id, nameof(ids));
        }
        return array;
    }
}
