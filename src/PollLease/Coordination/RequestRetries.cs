namespace PollLease.Coordination;

/// <summary>
/// The acquisitions and releases of requests whose answer never came. Such a request may have run in Redis all the
/// same: its acquisitions would hang on this instance's heartbeat, held by nobody who polls, and its releases would
/// never happen. So both are sent again with every request until one is answered; acquiring a lease that is already
/// ours only gives it a new token, and releasing one that changed hands is refused by the value check.
/// Not thread-safe: <see cref="LeaseTable"/> calls it under its lock.
/// </summary>
internal sealed class RequestRetries
{
    private readonly HashSet<string> _acquire = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HeldLease> _release = new(StringComparer.Ordinal);

    public void Failed(CycleRequest request)
    {
        _acquire.UnionWith(request.Acquire);
        foreach (var held in request.Release)
        {
            _release[held.SessionId] = held;
        }
    }

    public void Answered(CycleRequest request)
    {
        _acquire.ExceptWith(request.Acquire);
        foreach (var held in request.Release)
        {
            _release.Remove(held.SessionId);
        }
    }

    /// <summary>The plan's acquisitions plus those to retry that are not held now.</summary>
    public IReadOnlyList<string> Acquire(IReadOnlyList<string> planned, Func<string, bool> held)
    {
        if (_acquire.Count == 0)
        {
            return planned;
        }
        var set = new HashSet<string>(planned, StringComparer.Ordinal);
        return [.. planned, .. _acquire.Where(x => !held(x) && !set.Contains(x))];
    }

    /// <summary>Adds the releases to retry to <paramref name="release"/>, and forgets them when <paramref name="clear"/>.</summary>
    public void AddReleases(List<HeldLease> release, bool clear = false)
    {
        var listed = release.Select(r => r.SessionId).ToHashSet(StringComparer.Ordinal);
        release.AddRange(_release.Values.Where(r => !listed.Contains(r.SessionId)));
        if (clear)
        {
            _acquire.Clear();
            _release.Clear();
        }
    }
}
