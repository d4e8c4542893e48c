using Microsoft.Extensions.Logging;
using PollLease.Telemetry;

namespace PollLease.Election;

/// <summary>
/// The election's health check and its count of consecutive failures: false, an exception or no answer within the
/// timeout is a failure. Used by the election loop only (not thread-safe).
/// </summary>
internal sealed class HealthGate(Func<CancellationToken, Task<bool>>? check, ElectionContext c)
{
    private readonly int _threshold = c.Options.HealthCheckFailureThreshold;

    /// <summary>Consecutive failed checks.</summary>
    public int Failures { get; private set; }

    /// <summary>A new term starts with a clean count.</summary>
    public void Reset() => Failures = 0;

    /// <summary>Runs the check (true at once when there is none); false once failures reached the threshold.</summary>
    public async Task<bool> PassesAsync(CancellationToken cancellationToken)
    {
        if (check is null)
        {
            return true;
        }
        Exception? error = null;
        var healthy = false;
        try
        {
            healthy = await check(cancellationToken).WaitAsync(c.Options.OperationTimeout, c.Time, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // A user health check may throw anything; every exception counts as a failed check.
        catch (Exception e)
#pragma warning restore CA1031
        {
            error = e;
        }
        if (healthy)
        {
            Failures = 0;
            return true;
        }
        Failures++;
        c.Metrics.Failed("health");
        ElectionLog.HealthFailed(c.Logger, error, c.Role, c.InstanceId, Failures, _threshold);
        return Failures < _threshold;
    }
}
