using Microsoft.Extensions.Logging;
using PollLease.Coordination;
using PollLease.Telemetry;

namespace PollLease.Election;

/// <summary>
/// Turns an election's changes of leadership into their effects: the term's state (<see cref="LeadershipState"/>),
/// the deadline timer that demotes a leader whose loop is late, the callbacks (in order, off the loop), the metrics
/// and the log lines.
/// </summary>
internal sealed class Leadership : IAsyncDisposable
{
    private readonly LeadershipState _state;
    private readonly CallbackQueue _callbacks;
    private readonly ElectionCallbacks _user;
    private readonly ElectionMetrics _metrics;
    private readonly ILogger _logger;
    private readonly string _role;
    private readonly string _instanceId;
    private readonly Action _wake;
    private readonly ITimer _deadlineTimer;

    public Leadership(ElectionCallbacks callbacks, Action wake, ElectionContext c)
    {
        (_role, _instanceId, _metrics, _logger, _user, _wake) = (c.Role, c.InstanceId, c.Metrics, c.Logger, callbacks, wake);
        _state = new LeadershipState(c.InstanceId, c.Options.RenewDeadline, c.Options.DisconnectGracePeriod, c.Time);
        _callbacks = new CallbackQueue(c);
        _deadlineTimer = c.Time.CreateTimer(_ => CheckDeadline(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public LeadershipState State => _state;

    /// <summary>Completes once callbacks were closed (<see cref="Close"/>) and every queued one ran.</summary>
    public Task CallbacksDone => _callbacks.Completion;

    public void Start() => _callbacks.Start();

    /// <summary>No callback after this, and no deadline timer.</summary>
    public void Close()
    {
        _callbacks.Complete();
        _deadlineTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>A term won by a call sent at <paramref name="sent"/> begins: OnPromote is started with its token.</summary>
    public void Promote(long token, long sent)
    {
        var leadership = _state.Promote(token, sent);
        ArmDeadlineTimer();
        _metrics.Promoted();
        ElectionLog.Promoted(_logger, _role, _instanceId, token);
        Observe(LeaseValue.Format(_instanceId, token));
        var term = new ElectionTerm(_role, token, leadership.Token);
        if (_user.OnPromote is { } onPromote)
        {
            _callbacks.Promoted(() => onPromote(term));
        }
    }

    /// <summary>A renew of <paramref name="value"/> sent at <paramref name="sent"/> succeeded: the deadline moves on.</summary>
    public void Renewed(string value, long sent)
    {
        if (_state.Renewed(value, sent))
        {
            ArmDeadlineTimer();
        }
    }

    /// <summary>Ends the current term (only the term of <paramref name="value"/> when given): its token is cancelled and OnDemote queued.</summary>
    public void Demote(string reason, string? value)
    {
        var onDemote = _user.OnDemote;
        if (_state.Demote(reason, value, () => _callbacks.Demoted(onDemote is null ? null : () => onDemote(reason))) is not { } ended)
        {
            return;
        }
        _deadlineTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        try
        {
            ended.Leadership?.Cancel();
        }
        catch (AggregateException e)
        {
            // A registration on the leadership token threw; the term has ended all the same.
            ElectionLog.CallbackFailed(_logger, e, _role, _instanceId, "OnPromote cancellation");
        }
        _metrics.Demoted(reason);
        ElectionLog.Demoted(_logger, _role, _instanceId, ended.Token, reason);
        _wake();
    }

    /// <summary>A key value was read: a new leader is logged and OnNewLeader queued; a value that is no lease value is logged.</summary>
    public void Observe(string? value)
    {
        if (value is null)
        {
            return;
        }
        var leader = _state.Observe(value, out var malformed);
        if (malformed)
        {
            ElectionLog.MalformedKey(_logger, _role, value);
        }
        if (leader is null)
        {
            return;
        }
        ElectionLog.NewLeader(_logger, _role, _instanceId, leader);
        if (_user.OnNewLeader is { } onNewLeader)
        {
            _callbacks.Post("OnNewLeader", () => onNewLeader(leader));
        }
    }

    /// <summary>The connection dropped: a leader now leads at most until the grace period ends.</summary>
    public bool Disconnected()
    {
        var leading = _state.Disconnected();
        ArmDeadlineTimer();
        return leading;
    }

    /// <summary>The connection is back.</summary>
    public void Restored()
    {
        _state.Restored();
        ArmDeadlineTimer();
    }

    public async ValueTask DisposeAsync()
    {
        await _deadlineTimer.DisposeAsync().ConfigureAwait(false);
        _state.DisposeLeadership();
    }

    private void ArmDeadlineTimer()
    {
        if (_state.UntilDeadline is { } due)
        {
            _deadlineTimer.Change(due, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The timer fired: demote when the deadline passed (the loop may be stuck), else wait for the moved deadline.</summary>
    private void CheckDeadline()
    {
        if (_state.Value is not { } value)
        {
            return;
        }
        if (_state.IsLeader)
        {
            ArmDeadlineTimer();
            return;
        }
        Demote(_state.DeadlineReason, value);
    }
}
