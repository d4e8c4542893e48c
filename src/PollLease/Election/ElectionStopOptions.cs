namespace PollLease.Election;

/// <summary>How <see cref="LeaderElection.StopAsync"/> ends an election.</summary>
public sealed class ElectionStopOptions
{
    /// <summary>Delete the leader key when this instance holds it, so a follower takes over at once instead of after the TTL. Default true.</summary>
    public bool DeleteKey { get; init; } = true;

    /// <summary>How long to wait for OnDemote to finish. Default 5 s.</summary>
    public TimeSpan DemoteTimeout { get; init; } = TimeSpan.FromSeconds(5);
}
