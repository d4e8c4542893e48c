namespace PollLease.Coordination;

/// <summary>A point-in-time view of one lease held by this instance.</summary>
/// <param name="SessionId">The session.</param>
/// <param name="Token">The fencing token issued when this instance acquired it; every fenced write carries it.</param>
/// <param name="State">Owned or Uncertain (Lost leases are not listed).</param>
/// <param name="ValidFor">Time left until the local validity deadline.</param>
/// <param name="AcquiredAt">When this instance acquired it.</param>
public readonly record struct LeaseSnapshot(string SessionId, long Token, LeaseState State, TimeSpan ValidFor, DateTimeOffset AcquiredAt);
