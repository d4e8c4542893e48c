using Microsoft.Extensions.Time.Testing;
using PollLease.Assignment;
using PollLease.Coordination;

namespace PollLease.Tests.Coordination;

/// <summary>The lease table's side of the data-loss quarantine, on a fake clock with hand-made answers. No Redis.</summary>
public sealed class LeaseTableQuarantineTests
{
    private const long ServerMs = 1_800_000_000_000;
    private static readonly TimeSpan Quarantine = TimeSpan.FromMilliseconds(1200);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UnixEpoch.AddDays(20_000));
    private readonly PollLeaseOptions _options = LeaseTestHost.FastOptions("t", "me");
    private readonly List<LeaseEvent> _events = [];

    [Fact]
    public void Acquisitions_refused_by_the_quarantine_teach_nothing_and_the_table_wakes_when_it_ends()
    {
        var table = new LeaseTable("me", _options, _time);
        var request = table.BuildRequest(HeartbeatMode.Beat, new LeasePlan(["a", "b"], []), _events);
        var answer = new CycleResponse(ServerMs, false, ["me"], new Dictionary<string, long> { ["me"] = ServerMs + 1500 }, [],
            request.Acquire.Select(_ => new AcquireOutcome(0, null, Quarantine, 0)).ToArray(), [], 0, "1", "1799999999000", Quarantine);

        var applied = table.Apply(request, answer, _time.GetTimestamp(), _events);

        Assert.Equal(0, applied.Acquired);
        Assert.DoesNotContain(_events, e => e.Kind == LeaseEventKind.Acquired);
        // Nobody holds them as far as the table knows: no holder to wait for, no failover to report later.
        var input = table.PlanInput(new HashSet<string>(["a", "b"], StringComparer.Ordinal), _time.GetTimestamp());
        Assert.Empty(input.HeldElsewhere);
        Assert.Empty(input.Orphaned);
        Assert.Empty(input.Held);
        // The next cycle comes when the quarantine ends, not a whole cycle interval later.
        Assert.Equal(Quarantine, table.NextWake(_time.GetTimestamp(), TimeSpan.FromSeconds(10)));
        _time.Advance(Quarantine);
        Assert.Equal(TimeSpan.FromSeconds(10), table.NextWake(_time.GetTimestamp(), TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void An_answer_without_a_quarantine_ends_the_one_an_earlier_answer_reported()
    {
        var table = new LeaseTable("me", _options, _time);
        var first = table.BuildRequest(HeartbeatMode.Beat, new LeasePlan([], []), _events);
        table.Apply(first, new CycleResponse(ServerMs, false, ["me"], new Dictionary<string, long> { ["me"] = ServerMs + 1500 }, [], [], [], 0, "1", "7", Quarantine),
            _time.GetTimestamp(), _events);
        Assert.Equal(Quarantine, table.NextWake(_time.GetTimestamp(), TimeSpan.FromSeconds(10)));

        var second = table.BuildRequest(HeartbeatMode.Beat, new LeasePlan([], []), _events);
        table.Apply(second, new CycleResponse(ServerMs, false, ["me"], new Dictionary<string, long> { ["me"] = ServerMs + 1500 }, [], [], [], 0, "1", "7"),
            _time.GetTimestamp(), _events);
        Assert.Equal(TimeSpan.FromSeconds(10), table.NextWake(_time.GetTimestamp(), TimeSpan.FromSeconds(10)));
    }
}
