namespace PollLease.Coordination;

/// <summary>Outcome of <see cref="LeaseManager.TryAcquireAsync"/>.</summary>
/// <param name="Acquired">True when this instance holds the lease now.</param>
/// <param name="Token">The fencing token when acquired; 0 otherwise.</param>
/// <param name="Holder">The instance holding the lease (this one when acquired).</param>
public sealed record LeaseAcquireResult(bool Acquired, long Token, string Holder);

/// <summary>Outcome of one lease cycle.</summary>
/// <param name="Succeeded">False when the round trip failed (Redis unreachable, timeout, error).</param>
/// <param name="Acquired">Leases acquired.</param>
/// <param name="Renewed">Leases renewed.</param>
/// <param name="Lost">Leases lost (deadline, expired or taken).</param>
/// <param name="Released">Leases released on purpose.</param>
/// <param name="LiveNodes">Live instances seen.</param>
/// <param name="Duration">Round-trip time.</param>
public sealed record LeaseCycleResult(bool Succeeded, int Acquired, int Renewed, int Lost, int Released, int LiveNodes, TimeSpan Duration);

/// <summary>Outcome of <see cref="LeaseManager.StopAsync"/>.</summary>
/// <param name="Released">Leases deleted in Redis by the stop (those held, and any a cycle in flight had just taken).</param>
/// <param name="LeftToExpire">
/// Leases the stop could not confirm released (Redis unreachable, or the stop's budget ran out): others may take
/// them once this instance's heartbeat expires, at most one LeaseTtl after its last heartbeat. 0 when deregistered.
/// </param>
/// <param name="Deregistered">True when the stop request ran: this instance holds no lease key and no registry entry.</param>
public sealed record LeaseStopResult(int Released, int LeftToExpire, bool Deregistered);
