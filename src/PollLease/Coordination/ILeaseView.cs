using PollLease.Sessions;

namespace PollLease.Coordination;

/// <summary>What the poll scheduler needs of the lease manager: the sessions, the local lease state and the strict check.</summary>
internal interface ILeaseView
{
    string InstanceId { get; }

    /// <summary>
    /// Every session (paused included) as the lease manager's last cycle read it from its session source: the
    /// scheduler polls from the same answer the leases were planned with, never from a source of its own.
    /// </summary>
    IReadOnlyDictionary<string, PollSession> Sessions { get; }

    bool TryGetLease(string sessionId, out LeaseSnapshot lease);

    IReadOnlyList<LeaseSnapshot> OwnedSessions();

    Task<bool> IsOwnedStrictAsync(string sessionId, CancellationToken cancellationToken);

    /// <summary>A poll started at <paramref name="at"/> (a timestamp); <paramref name="record"/> when the schedule's phase moved.</summary>
    void PollStarted(string sessionId, long token, long at, bool record);

    /// <summary>When the session's previous poll started (any owner), as learnt when the lease was acquired.</summary>
    bool TryGetPreviousPoll(string sessionId, long token, out long at);
}
