namespace PollLease.Fleet;

/// <summary>What one janitor sweep did and saw.</summary>
/// <param name="At">Redis server time of the fleet snapshot.</param>
/// <param name="RemovedNodes">Dead instances removed from the registry.</param>
/// <param name="RemovedLeases">Leases of sessions missing from the catalog, deleted.</param>
/// <param name="RemovedFences">Fences of sessions missing from the catalog (with no lease left), deleted.</param>
/// <param name="LiveInstances">Live instances.</param>
/// <param name="Sessions">Active (not paused) sessions in the catalog.</param>
/// <param name="Unowned">Active sessions nobody holds.</param>
/// <param name="Busiest">Most leases held by one instance.</param>
/// <param name="Ideal">ceil(Sessions / LiveInstances): the most any instance should hold.</param>
internal sealed record JanitorSweep(DateTimeOffset At, int RemovedNodes, int RemovedLeases, int RemovedFences, int LiveInstances, int Sessions, int Unowned, int Busiest, int Ideal)
{
    /// <summary>Busiest / Ideal: 1 is perfectly balanced; 0 when there is nothing to hold.</summary>
    public double Balance => Ideal == 0 ? 0 : (double)Busiest / Ideal;
}
