using PollLease.Coordination;

namespace PollLease.Tests.Assignment;

/// <summary>Checks on the lease events a fleet raised: never two owners at once, and no acquisition loops.</summary>
internal static class OwnershipHistory
{
    /// <summary>
    /// Ownership windows from the events: an Acquired event is stamped after Redis granted the lease; a Released,
    /// Uncertain or Lost one when the holder stopped counting it as owned (before Redis forgets it). Tokens grow and
    /// windows never overlap.
    /// </summary>
    public static void AssertNoTwoOwners(IEnumerable<LeaseEvent> events)
    {
        foreach (var group in events.Where(e => e.Kind != LeaseEventKind.Renewed).GroupBy(e => e.SessionId))
        {
            var windows = group.Where(e => e.Kind == LeaseEventKind.Acquired)
                .Select(acq => (acq.InstanceId, acq.Token, Start: acq.Timestamp, End: group
                    .Where(e => e.InstanceId == acq.InstanceId && e.Token == acq.Token && e.Kind is LeaseEventKind.Released or LeaseEventKind.Uncertain or LeaseEventKind.Lost)
                    .Select(e => e.Timestamp).DefaultIfEmpty(DateTimeOffset.MaxValue).Min()))
                .OrderBy(w => w.Token)
                .ToList();
            for (var i = 1; i < windows.Count; i++)
            {
                var (prev, next) = (windows[i - 1], windows[i]);
                Assert.True(next.Token > prev.Token, $"{group.Key}: token {next.Token} of {next.InstanceId} repeats {prev.InstanceId}'s");
                Assert.True(prev.End <= next.Start, $"{group.Key}: {prev.InstanceId} (token {prev.Token}) owned it until {prev.End:O}, {next.InstanceId} (token {next.Token}) from {next.Start:O}");
            }
        }
    }

    /// <summary>No instance acquired one session three times within <paramref name="leaseTtl"/>.</summary>
    public static void AssertAtMostTwoAcquisitionsPerTtl(IEnumerable<LeaseEvent> events, TimeSpan leaseTtl)
    {
        foreach (var group in events.Where(e => e.Kind == LeaseEventKind.Acquired).GroupBy(e => (e.InstanceId, e.SessionId)))
        {
            var times = group.Select(e => e.Timestamp).Order().ToList();
            for (var i = 2; i < times.Count; i++)
            {
                Assert.True(times[i] - times[i - 2] >= leaseTtl, $"{group.Key.InstanceId} acquired {group.Key.SessionId} 3 times within {(times[i] - times[i - 2]).TotalMilliseconds:0} ms");
            }
        }
    }
}
