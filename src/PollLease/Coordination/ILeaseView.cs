namespace PollLease.Coordination;

/// <summary>What the poll scheduler needs of the lease manager: the local lease state and the strict check.</summary>
internal interface ILeaseView
{
    string InstanceId { get; }

    bool TryGetLease(string sessionId, out LeaseSnapshot lease);

    IReadOnlyList<LeaseSnapshot> OwnedSessions();

    Task<bool> IsOwnedStrictAsync(string sessionId, CancellationToken cancellationToken);
}
