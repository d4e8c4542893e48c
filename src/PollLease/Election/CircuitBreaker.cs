namespace PollLease.Election;

/// <summary>
/// Opens after <c>threshold</c> consecutive store errors and stays open for <c>openDuration</c>; then one trial
/// call is let through (half-open): success closes it, failure opens it again, so a Redis outage costs one call per open period, not one per tick. Not thread-safe: only
/// the election loop uses it.
/// </summary>
internal sealed class CircuitBreaker(int threshold, TimeSpan openDuration, TimeProvider time)
{
    private long _openUntil;
    private bool _open;

    public int ConsecutiveFailures { get; private set; }

    /// <summary>True while no call should be made.</summary>
    public bool IsOpen => _open && time.GetTimestamp() < _openUntil;

    /// <summary>Time until a trial call is allowed (zero when closed or half-open).</summary>
    public TimeSpan RemainingOpen => IsOpen ? time.GetElapsedTime(time.GetTimestamp(), _openUntil) : TimeSpan.Zero;

    public void RecordSuccess()
    {
        ConsecutiveFailures = 0;
        _open = false;
    }

    /// <summary>Counts a failure; returns true when this failure opened (or re-opened) the circuit.</summary>
    public bool RecordFailure()
    {
        ConsecutiveFailures++;
        if (ConsecutiveFailures < threshold)
        {
            return false;
        }
        _open = true;
        _openUntil = time.GetTimestamp() + (long)(openDuration.TotalSeconds * time.TimestampFrequency);
        return true;
    }
}
