using Microsoft.Extensions.Time.Testing;
using PollLease.Election;

namespace PollLease.Tests.Election;

/// <summary>The term state on a fake clock: deadlines, the disconnection grace, demotion and the stale key value.</summary>
public sealed class LeadershipStateTests
{
    private static readonly TimeSpan RenewDeadline = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Grace = TimeSpan.FromMilliseconds(500);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UnixEpoch);
    private readonly LeadershipState _state;

    public LeadershipStateTests() => _state = new LeadershipState("node-a", RenewDeadline, Grace, _time);

    [Fact]
    public void A_term_leads_until_send_time_plus_the_renew_deadline_and_a_renew_moves_it_on()
    {
        var sent = _time.GetTimestamp();
        _time.Advance(TimeSpan.FromMilliseconds(300)); // the reply arrives later: the deadline counts from the send
        _state.Promote(7, sent);
        Assert.True(_state.IsLeader);
        Assert.Equal(7, _state.Token);
        Assert.Equal("node-a|7", _state.Value);
        Assert.Equal("node-a|7", _state.ValueOf(7));
        Assert.Null(_state.ValueOf(6));

        _time.Advance(RenewDeadline - TimeSpan.FromMilliseconds(301));
        Assert.True(_state.IsLeader);
        var renewSent = _time.GetTimestamp();
        Assert.True(_state.Renewed("node-a|7", renewSent));
        _time.Advance(RenewDeadline - TimeSpan.FromTicks(1));
        Assert.True(_state.IsLeader);
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.False(_state.IsLeader);
        Assert.Equal(0, _state.Token);
        Assert.Equal(DemotionReasons.Deadline, _state.DeadlineReason);
        Assert.False(_state.Renewed("node-a|7", _time.GetTimestamp())); // too late: the term is over
    }

    [Fact]
    public void While_disconnected_a_leader_leads_at_most_the_grace_period()
    {
        _state.Promote(3, _time.GetTimestamp());
        Assert.True(_state.Disconnected());
        _time.Advance(Grace - TimeSpan.FromTicks(1));
        Assert.True(_state.IsLeader);
        _time.Advance(TimeSpan.FromTicks(1));
        Assert.False(_state.IsLeader);
        Assert.Equal(DemotionReasons.Disconnected, _state.DeadlineReason);
        Assert.Equal(TimeSpan.Zero, _state.UntilDeadline);
    }

    [Fact]
    public void A_demotion_by_deadline_leaves_a_stale_value_to_hand_over_and_one_for_another_term_is_ignored()
    {
        _state.Promote(5, _time.GetTimestamp());
        Assert.Null(_state.Demote(DemotionReasons.Lost, "node-a|4", () => Task.CompletedTask));
        Assert.True(_state.IsLeader);

        var ended = _state.Demote(DemotionReasons.Deadline, "node-a|5", () => Task.CompletedTask);
        Assert.Equal(5, ended?.Token);
        Assert.True(ended?.Leadership?.IsCancellationRequested == false); // cancelled by the caller, outside the lock
        Assert.Equal("node-a|5", _state.Stale);
        Assert.Null(_state.Value);
        Assert.NotNull(_state.DemoteDone);
        Assert.Null(_state.Demote(DemotionReasons.Stopped, null, () => Task.CompletedTask));

        _state.ForgetStale();
        Assert.Null(_state.Stale);
        _state.Promote(9, _time.GetTimestamp());
        Assert.NotNull(_state.Demote(DemotionReasons.Lost, null, () => Task.CompletedTask));
        Assert.Null(_state.Stale); // a lost key is someone else's: nothing to hand over
    }

    [Fact]
    public void Observed_values_name_the_leader_once_and_a_value_in_another_format_is_reported()
    {
        Assert.Equal("node-b", _state.Observe("node-b|12", out var malformed));
        Assert.False(malformed);
        Assert.Null(_state.Observe("node-b|13", out _));
        Assert.Equal("node-b", _state.CurrentLeader);
        Assert.Null(_state.Observe("wrong-type", out malformed));
        Assert.True(malformed);
        Assert.Equal("node-b", _state.CurrentLeader);
    }
}
