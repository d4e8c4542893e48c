using PollLease.Coordination;

namespace PollLease.Election;

/// <summary>What a demotion ended: the term's token and its cancellation source.</summary>
internal readonly record struct Demotion(long Token, CancellationTokenSource? Leadership);

/// <summary>
/// One candidate's view of its leadership, with no I/O: whether it leads, with which token and value, until when,
/// and who leads as far as it knows. Times are <see cref="TimeProvider.GetTimestamp"/> values. It leads until
/// <c>send time of its last successful renew + RenewDeadline</c>, or, while disconnected, until the disconnection
/// plus the grace period when that comes first; every read is checked against the clock. Thread-safe.
/// </summary>
internal sealed class LeadershipState
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly string _instanceId;
    private readonly long _renewDeadline;
    private readonly long _grace;
    private bool _leading;
    private long _token;
    private string? _value;
    private long _deadline;
    private long? _disconnectedAt;
    private string? _currentLeader;
    private CancellationTokenSource? _leadership;
    private Task? _demoteDone;
    private string? _stale;

    public LeadershipState(string instanceId, TimeSpan renewDeadline, TimeSpan disconnectGrace, TimeProvider time)
    {
        _instanceId = instanceId;
        _time = time;
        _renewDeadline = Ticks(renewDeadline);
        _grace = Ticks(disconnectGrace);
    }

    /// <summary>Leads and the deadline has not passed.</summary>
    public bool IsLeader => Read(() => LeadingNow());

    /// <summary>The current term's token while <see cref="IsLeader"/>, else 0.</summary>
    public long Token => Read(() => LeadingNow() ? _token : 0);

    /// <summary>The current term's value (<c>id|token</c>) while it has not been demoted, deadline or not.</summary>
    public string? Value => Read(() => _leading ? _value : null);

    /// <summary>
    /// The value of a term that ended by its deadline or a disconnection: its key may still be in Redis, and is handed
    /// over (deleted) rather than left to expire. Null when there is none.
    /// </summary>
    public string? Stale => Read(() => _stale);

    /// <summary>Forgets <see cref="Stale"/> (released, or the key holds something else now).</summary>
    public void ForgetStale()
    {
        lock (_gate)
        {
            _stale = null;
        }
    }

    /// <summary>The leader last observed, or null.</summary>
    public string? CurrentLeader => Read(() => _currentLeader);

    /// <summary>The current term's value when <paramref name="token"/> is its token and it still leads, else null.</summary>
    public string? ValueOf(long token) => Read(() => LeadingNow() && token > 0 && _token == token ? _value : null);

    /// <summary>Completes when the last demotion's OnDemote finished; null when none is pending.</summary>
    public Task? DemoteDone => Read(() => _demoteDone);

    /// <summary>Time left before the deadline while leading (zero when passed), null when not leading.</summary>
    public TimeSpan? UntilDeadline => Read<TimeSpan?>(() =>
    {
        if (!_leading)
        {
            return null;
        }
        var left = _time.GetElapsedTime(_time.GetTimestamp(), Effective());
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    });

    /// <summary>The reason to give when the deadline passed: the disconnection's grace, or the renew deadline.</summary>
    public string DeadlineReason => Read(() => _disconnectedAt is not null && Effective() < _deadline ? DemotionReasons.Disconnected : DemotionReasons.Deadline);

    /// <summary>Starts a term won by a call sent at <paramref name="sent"/>; returns the term's cancellation source.</summary>
    public CancellationTokenSource Promote(long token, long sent)
    {
        var leadership = new CancellationTokenSource();
        lock (_gate)
        {
            _leading = true;
            _disconnectedAt = null;
            _stale = null;
            _token = token;
            _value = LeaseValue.Format(_instanceId, token);
            _deadline = sent + _renewDeadline;
            // The previous term's source is not disposed: its OnPromote may still hold (cancelled) registrations.
            _leadership = leadership;
        }
        return leadership;
    }

    /// <summary>A renew of <paramref name="value"/> sent at <paramref name="sent"/> succeeded: the deadline moves on, unless the term already ended.</summary>
    public bool Renewed(string value, long sent)
    {
        lock (_gate)
        {
            if (!_leading || _value != value || !LeadingNow())
            {
                return false;
            }
            _disconnectedAt = null; // a successful round trip proves the connection, even if the restored event was missed
            _deadline = sent + _renewDeadline;
            return true;
        }
    }

    /// <summary>
    /// Ends the term (only the term of <paramref name="value"/> when given); null when there was none to end.
    /// <paramref name="demoteDone"/> becomes <see cref="DemoteDone"/>.
    /// </summary>
    public Demotion? Demote(string reason, string? value, Func<Task> demoteDone)
    {
        lock (_gate)
        {
            if (!_leading || (value is not null && _value != value))
            {
                return null;
            }
            var ended = new Demotion(_token, _leadership);
            if (reason is DemotionReasons.Deadline or DemotionReasons.Disconnected)
            {
                _stale = _value;
            }
            _leading = false;
            _value = null;
            _token = 0;
            _demoteDone = demoteDone();
            return ended;
        }
    }

    /// <summary>The connection dropped (the first report counts); true when leading.</summary>
    public bool Disconnected()
    {
        lock (_gate)
        {
            _disconnectedAt ??= _time.GetTimestamp();
            return _leading;
        }
    }

    /// <summary>The connection is back; true when leading.</summary>
    public bool Restored()
    {
        lock (_gate)
        {
            _disconnectedAt = null;
            return _leading;
        }
    }

    /// <summary>Records the leader found in a key value; the leader's id when it changed, null otherwise (or when the value is no lease value).</summary>
    public string? Observe(string value, out bool malformed)
    {
        malformed = !LeaseValue.TryParse(value, out var leader, out _);
        lock (_gate)
        {
            if (malformed || _currentLeader == leader)
            {
                return null;
            }
            _currentLeader = leader;
            return leader;
        }
    }

    /// <summary>Disposes the last term's cancellation source (the election is disposed).</summary>
    public void DisposeLeadership()
    {
        lock (_gate)
        {
            _leadership?.Dispose();
            _leadership = null;
        }
    }

    private bool LeadingNow() => _leading && _time.GetTimestamp() < Effective();

    private long Effective() => _disconnectedAt is { } at ? Math.Min(_deadline, at + _grace) : _deadline;

    private T Read<T>(Func<T> read)
    {
        lock (_gate)
        {
            return read();
        }
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);
}
