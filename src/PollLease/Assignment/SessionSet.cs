namespace PollLease.Assignment;

/// <summary>
/// A set of session ids numbered 0..Count-1 in the order first seen. Built once per change of the active sessions
/// and shared by every assignment computed over them, so a recomputation on a membership change works on integer
/// arrays instead of rebuilding string dictionaries of every session. Results never depend on the numbering: every
/// tie the assignment breaks is broken by the ids themselves.
/// </summary>
internal sealed class SessionSet
{
    private ulong[]? _hashes;

    private SessionSet(string[] ids, Dictionary<string, int> index)
    {
        Ids = ids;
        Index = index;
    }

    public string[] Ids { get; }

    public Dictionary<string, int> Index { get; }

    public int Count => Ids.Length;

    /// <summary>Each session's XxHash64 (see <see cref="RendezvousScore.Hash"/>), computed on first use and kept with the set.</summary>
    public ulong[] Hashes
    {
        get
        {
            if (Volatile.Read(ref _hashes) is { } hashes)
            {
                return hashes;
            }
            hashes = new ulong[Ids.Length];
            for (var i = 0; i < hashes.Length; i++)
            {
                hashes[i] = RendezvousScore.Hash(Ids[i]);
            }
            // Racing threads compute equal arrays; either may win.
            Volatile.Write(ref _hashes, hashes);
            return hashes;
        }
    }

    public static SessionSet From(IEnumerable<string> sessions)
    {
        ArgumentNullException.ThrowIfNull(sessions);
        var index = new Dictionary<string, int>(sessions is IReadOnlyCollection<string> c ? c.Count : 0, StringComparer.Ordinal);
        var ids = new List<string>(index.Capacity);
        foreach (var s in sessions)
        {
            if (index.TryAdd(s, ids.Count))
            {
                ids.Add(s);
            }
        }
        return new SessionSet([.. ids], index);
    }
}

/// <summary>
/// Each session's owner in an earlier assignment, resolved onto a <see cref="SessionSet"/>: an index into
/// <see cref="Names"/> per session, -1 for none. Resolved once per published assignment (or taken as is from a
/// <see cref="BalancedAssignment"/> over the same set), then reused by every recomputation from it.
/// </summary>
internal sealed class PreviousOwners
{
    public PreviousOwners(SessionSet sessions, string[] names, int[] owner)
    {
        Sessions = sessions;
        Names = names;
        Owner = owner;
    }

    public SessionSet Sessions { get; }

    public string[] Names { get; }

    public int[] Owner { get; }

    /// <summary>Resolves <paramref name="owners"/> (session to instance) onto <paramref name="sessions"/>.</summary>
    public static PreviousOwners Resolve(SessionSet sessions, IReadOnlyDictionary<string, string> owners)
    {
        if (owners is BalancedAssignment.OwnerView view && ReferenceEquals(view.Assignment.Sessions, sessions))
        {
            return new PreviousOwners(sessions, [.. view.Assignment.Nodes], view.Assignment.OwnerIndexes);
        }
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        var owner = new int[sessions.Count];
        for (var i = 0; i < owner.Length; i++)
        {
            if (owners.TryGetValue(sessions.Ids[i], out var name))
            {
                if (!names.TryGetValue(name, out var j))
                {
                    j = names.Count;
                    names[name] = j;
                }
                owner[i] = j;
            }
            else
            {
                owner[i] = -1;
            }
        }
        var table = new string[names.Count];
        foreach (var (name, j) in names)
        {
            table[j] = name;
        }
        return new PreviousOwners(sessions, table, owner);
    }
}
