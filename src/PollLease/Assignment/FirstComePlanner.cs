using PollLease.Coordination;

namespace PollLease.Assignment;

/// <summary>
/// The seed's first behaviour (User Story 1): try every active session nobody live holds; release only what
/// left the catalog. Used when balancing is switched off.
/// </summary>
internal sealed class FirstComePlanner : ILeasePlanner
{
    public LeasePlan Plan(LeasePlanInput input)
    {
        var acquire = new List<string>();
        var active = input.ActiveSessions as IReadOnlySet<string> ?? new HashSet<string>(input.ActiveSessions, StringComparer.Ordinal);
        foreach (var session in input.ActiveSessions)
        {
            if (!input.Held.Contains(session) && !input.HeldElsewhere.ContainsKey(session))
            {
                acquire.Add(session);
            }
        }
        var release = new List<(string, string)>();
        foreach (var session in input.Held)
        {
            if (!active.Contains(session))
            {
                release.Add((session, LeaseReasons.Inactive));
            }
        }
        return new LeasePlan(acquire, release);
    }
}
