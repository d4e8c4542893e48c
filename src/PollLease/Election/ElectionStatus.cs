namespace PollLease.Election;

/// <summary>A snapshot of one election.</summary>
/// <param name="Role">The role.</param>
/// <param name="InstanceId">This candidate.</param>
/// <param name="IsLeader">This candidate leads and its deadline has not passed.</param>
/// <param name="CurrentLeader">The leader last observed (this instance included), or null when none is known.</param>
/// <param name="Token">This instance's fencing token while it leads, else 0.</param>
/// <param name="Running">The election loop is running.</param>
/// <param name="CircuitOpen">Store errors opened the circuit breaker: no Redis calls until it half-opens.</param>
public sealed record ElectionStatus(string Role, string InstanceId, bool IsLeader, string? CurrentLeader, long Token, bool Running, bool CircuitOpen);
