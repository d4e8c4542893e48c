using Microsoft.Extensions.Time.Testing;
using PollLease.Assignment;
using PollLease.Coordination;

namespace PollLease.Tests.Coordination;

/// <summary>The lease table on a fake clock, with hand-made answers: deadlines, lapses, retries, slices, poll times. No Redis.</summary>
public sealed class LeaseTableTests
{
    private const long ServerMs = 1_800_000_000_000;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UnixEpoch.AddDays(20_000));
    private readonly PollLeaseOptions _options = LeaseTestHost.FastOptions("t", "me");
    private readonly LeaseTable _table;
    private readonly List<LeaseEvent> _events = [];

    public LeaseTableTests()
    {
        _table = new LeaseTable("me", _options, _time);
        _start = _time.GetTimestamp();
    }

    private readonly long _start;

    /// <summary>Server time moves with the fake clock.</summary>
    private long ServerNow => ServerMs + (long)_time.GetElapsedTime(_start, _time.GetTimestamp()).TotalMilliseconds;

    private CycleResponse Answer(CycleRequest request, long serverMs = 0, bool lapsed = false, Func<string, AcquireOutcome>? acquire = null,
        Func<HeldLease, string?>? refreshFailed = null, params string[] live) =>
        new(serverMs == 0 ? ServerNow : serverMs, lapsed, live.Length == 0 ? ["me"] : live, (live.Length == 0 ? ["me"] : live).ToDictionary(n => n, _ => ServerNow + 1500),
            request.Refresh.Select(r => refreshFailed?.Invoke(r)).ToArray(),
            request.Acquire.Select(s => acquire?.Invoke(s) ?? new AcquireOutcome(100 + s.Length, null, TimeSpan.Zero, 0)).ToArray(),
            request.Release.Select(_ => true).ToArray(), 0, "1");

    /// <summary>Builds the request for a plan, sends it now and applies the answer built by <paramref name="answer"/>.</summary>
    private (CycleRequest Request, CycleApplied Applied) Cycle(LeasePlan plan, Func<CycleRequest, CycleResponse>? answer = null)
    {
        var request = _table.BuildRequest(HeartbeatMode.Beat, plan, _events);
        var sent = _time.GetTimestamp();
        return (request, _table.Apply(request, (answer ?? (r => Answer(r)))(request), sent, _events));
    }

    private long Now => _time.GetTimestamp();

    [Fact]
    public void One_heartbeat_deadline_covers_every_lease_and_each_answered_beat_moves_it_on()
    {
        Cycle(new LeasePlan(["a", "b"], []));
        var validity = _options.LeaseTtl - _options.SafetyMargin;
        Assert.Equal(LeaseState.Owned, _table.State("a", Now));

        _time.Advance(_options.CycleInterval);
        var (request, applied) = Cycle(new LeasePlan([], []));
        Assert.Empty(request.Release);
        Assert.Equal(2, applied.Renewed);

        _time.Advance(validity - TimeSpan.FromTicks(1));
        Assert.Equal(LeaseState.Owned, _table.State("b", Now));
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(LeaseState.Lost, _table.State("a", Now));
        Assert.Equal(LeaseState.Lost, _table.State("b", Now));
        Assert.Empty(_table.Held(Now));
    }

    [Fact]
    public void The_planner_gets_each_instances_heartbeat_age_against_the_lease_ttl_the_script_sets_heartbeats_to()
    {
        // A registry grace far longer than the lease TTL must not make live instances look old.
        var options = LeaseTestHost.FastOptions("t", "me");
        options.HeartbeatTtl = TimeSpan.FromSeconds(20);
        var table = new LeaseTable("me", options, _time);
        var request = table.BuildRequest(HeartbeatMode.Beat, new LeasePlan([], []), _events);
        var ttl = (long)options.LeaseTtl.TotalMilliseconds;
        var beats = new Dictionary<string, long> { ["me"] = ServerNow + ttl, ["other"] = ServerNow + ttl - 400 };
        table.Apply(request, new CycleResponse(ServerNow, false, ["me", "other"], beats, [], [], [], 0, "1"), Now, _events);
        _time.Advance(TimeSpan.FromMilliseconds(100));
        var input = table.PlanInput(["s"], Now);
        Assert.Equal(TimeSpan.FromMilliseconds(400), input.HeartbeatAge["other"]);
        Assert.Equal(TimeSpan.Zero, input.HeartbeatAge["me"]);
        Assert.Equal(TimeSpan.FromMilliseconds(100), input.ViewAge);
    }

    [Fact]
    public void A_failed_request_makes_leases_uncertain_and_a_late_answer_never_revives_a_lost_one()
    {
        Cycle(new LeasePlan(["a"], []));
        var failed = _table.BuildRequest(HeartbeatMode.Beat, new LeasePlan([], []), _events);
        _table.Failed(failed, _events);
        Assert.Equal(LeaseState.Uncertain, _table.State("a", Now));
        Assert.Single(_events, e => e.Kind == LeaseEventKind.Uncertain);

        // An answer in time turns it Owned again (one Renewed event, a state change).
        Cycle(new LeasePlan([], []));
        Assert.Equal(LeaseState.Owned, _table.State("a", Now));
        Assert.Single(_events, e => e.Kind == LeaseEventKind.Renewed);

        // A request sent before the deadline whose answer comes after it: the lease is lost, not revived.
        var request = _table.BuildRequest(HeartbeatMode.Beat, new LeasePlan([], []), _events);
        var sent = Now;
        _time.Advance(_options.LeaseTtl);
        _table.Apply(request, Answer(request), sent, _events);
        Assert.Equal(LeaseState.None, _table.State("a", Now));
        Assert.Contains(_events, e => e.Kind == LeaseEventKind.Lost && e.Reason == LeaseReasons.Deadline);
    }

    [Fact]
    public void A_lapsed_heartbeat_drops_every_lease_held_but_keeps_what_the_same_answer_acquired()
    {
        Cycle(new LeasePlan(["a", "b"], []));
        var (_, applied) = Cycle(new LeasePlan(["c"], []), r => Answer(r, lapsed: true));

        Assert.Equal(1, applied.Acquired);
        Assert.Equal(2, applied.Lost);
        Assert.Equal(["c"], _table.Held(Now).Select(l => l.SessionId));
        Assert.Equal(2, _events.Count(e => e.Kind == LeaseEventKind.Lost && e.Reason == LeaseReasons.HeartbeatLapsed));
    }

    [Fact]
    public void Acquisitions_and_releases_of_an_unanswered_request_are_sent_again_until_answered()
    {
        Cycle(new LeasePlan(["a"], []));
        var lost = _table.BuildRequest(HeartbeatMode.Beat, new LeasePlan(["b"], [("a", LeaseReasons.Rebalance)]), _events);
        Assert.Equal(LeaseState.None, _table.State("a", Now)); // released before anything is sent
        _table.Failed(lost, _events);

        var (retry, _) = Cycle(new LeasePlan(["c"], []));
        Assert.Equal(["c", "b"], retry.Acquire);
        Assert.Equal("a", Assert.Single(retry.Release).SessionId);

        var (after, _) = Cycle(new LeasePlan([], []));
        Assert.Empty(after.Acquire);
        Assert.Empty(after.Release);
    }

    [Fact]
    public void Safety_refreshes_go_round_a_slice_per_cycle_and_a_failed_refresh_loses_the_lease()
    {
        var sessions = Enumerable.Range(0, 1000).Select(i => $"s{i:D4}").ToList();
        for (var taken = 0; taken < 1000; taken += LeaseTable.MaxAcquirePerCycle)
        {
            var (request, _) = Cycle(new LeasePlan(sessions.Where(x => _table.State(x, Now) == LeaseState.None).ToList(), []));
            Assert.Equal(LeaseTable.MaxAcquirePerCycle, request.Acquire.Count); // a long list is split over requests
        }
        Assert.Equal(1000, _table.Count);
        var keyTtl = LeaseStore.KeyTtl(_options);
        var perCycle = (int)Math.Ceiling(1000 / ((keyTtl / 2) / _options.CycleInterval));

        var seen = new HashSet<string>();
        var cycles = 0;
        while (seen.Count < 1000 && cycles < 1000)
        {
            _time.Advance(_options.CycleInterval);
            var (request, _) = Cycle(new LeasePlan([], []));
            Assert.InRange(request.Refresh.Count, 1, Math.Max(perCycle, 1));
            seen.UnionWith(request.Refresh.Select(r => r.SessionId));
            cycles++;
        }
        Assert.Equal(1000, seen.Count);
        Assert.InRange(cycles * _options.CycleInterval, TimeSpan.Zero, keyTtl / 2 + _options.CycleInterval);

        _time.Advance(_options.CycleInterval);
        var (failed, applied) = Cycle(new LeasePlan([], []), r => Answer(r, refreshFailed: h => h.SessionId == r.Refresh[0].SessionId ? "other|9" : null));
        Assert.Equal(1, applied.Lost);
        Assert.Equal(LeaseState.None, _table.State(failed.Refresh[0].SessionId, Now));
        Assert.Contains(_events, e => e.Kind == LeaseEventKind.Lost && e.Reason == LeaseReasons.Taken);
    }

    [Fact]
    public void Answers_that_arrive_after_the_stop_took_everything_are_ignored()
    {
        Cycle(new LeasePlan(["a"], []));
        var inFlight = _table.BuildRequest(HeartbeatMode.Beat, new LeasePlan(["b"], []), _events);
        var sent = Now;

        var released = _table.TakeAll(LeaseReasons.Shutdown, _events);
        _table.Apply(inFlight, Answer(inFlight), sent, _events);

        Assert.Equal("a", Assert.Single(released).SessionId);
        Assert.Empty(_table.Held(Now));
        Assert.DoesNotContain(_events, e => e.Kind == LeaseEventKind.Acquired && e.SessionId == "b");
    }

    [Fact]
    public void Poll_starts_are_recorded_in_server_time_and_the_previous_poll_is_read_at_acquisition()
    {
        // The previous owner's last poll started 3 s before this answer's server time.
        Cycle(new LeasePlan(["a"], []), r => Answer(r, acquire: s => new AcquireOutcome(5, null, TimeSpan.Zero, ServerMs - 3000)));
        var token = _table.Held(Now).Single().Token;
        Assert.True(_table.TryGetPreviousPoll("a", token, out var previous));
        Assert.Equal(TimeSpan.FromSeconds(3), _time.GetElapsedTime(previous, Now));

        _time.Advance(TimeSpan.FromSeconds(1)); // within the lease's validity (1.2 s)
        _table.PollStarted("a", token, Now, record: true);
        var (request, _) = Cycle(new LeasePlan([], []));
        Assert.Equal(ServerMs + 1000, request.Refresh.Single(r => r.SessionId == "a" && r.PollStartMs != 0).PollStartMs);

        // Once recorded it is not sent again; a release carries the last poll start for the next owner.
        var (next, _) = Cycle(new LeasePlan([], []));
        Assert.DoesNotContain(next.Refresh, r => r.SessionId == "a" && r.PollStartMs != 0);
        var release = _table.BuildRequest(HeartbeatMode.Beat, new LeasePlan([], [("a", LeaseReasons.Rebalance)]), _events);
        Assert.Equal(ServerMs + 1000, Assert.Single(release.Release).PollStartMs);
    }

    [Fact]
    public void A_poll_start_reported_for_a_lease_lost_before_the_next_request_is_simply_dropped()
    {
        // Found by the chaos suite: the report outlived the lease and every later request failed to build.
        Cycle(new LeasePlan(["a"], []));
        _table.PollStarted("a", _table.Held(Now).Single().Token, Now, record: true);
        Cycle(new LeasePlan([], []), r => Answer(r, lapsed: true));

        var (request, applied) = Cycle(new LeasePlan(["b"], []));
        Assert.DoesNotContain(request.Refresh, r => r.SessionId == "a");
        Assert.Equal(1, applied.Acquired);
    }

    [Fact]
    public void A_holder_learnt_from_a_refused_acquire_counts_as_held_elsewhere_until_its_heartbeat_expires()
    {
        Cycle(new LeasePlan([], []), r => Answer(r, live: ["me", "other"]));
        Cycle(new LeasePlan(["x"], []), r => Answer(r, acquire: _ => new AcquireOutcome(0, "other|7", TimeSpan.FromSeconds(1), 0), live: ["me", "other"]));

        Assert.Equal("other", _table.PlanInput(["x"], Now).HeldElsewhere["x"]);
        _time.Advance(TimeSpan.FromSeconds(1));
        var input = _table.PlanInput(["x"], Now);
        Assert.False(input.HeldElsewhere.ContainsKey("x"));
        Assert.Equal("other", input.Orphaned["x"]);
    }
}
