using Microsoft.Extensions.Logging;
using PollLease.Telemetry;

namespace PollLease.Election;

/// <summary>
/// The election's health check and its count of consecutive failures: false, an exception or no answer within the
/// timeout is a failure. Used by the election loop only (not thread-safe).
/// </summary>
internal sealed class HealthGate
{
    private readonly Func<CancellationToken, Task<bool>>? _check;
    private readonly int _threshold;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ElectionMetrics _metrics;
    private readonly string _role;
    private readonly string _instanceId;

    public HealthGate(Func<CancellationToken, Task<bool>>? check, ElectionOptions options, TimeProvider time, ILogger logger, ElectionMetrics metrics)
    {
        _check = check;
        _threshold = options.HealthCheckFailureThreshold;
        _timeout = options.OperationTimeout;
        _time = time;
        _logger = logger;
        _metrics = metrics;
        _role = options.Role;
        _instanceId = options.InstanceId;
    }

    /// <summary>Consecutive failed checks.</summary>
    public int Failures { get; private set; }

    /// <summary>A new term starts with a clean count.</summary>
    public void Reset() => Failures = 0;

    /// <summary>Runs the check (true at once when there is none); false once failures reached the threshold.</summary>
    public async Task<bool> PassesAsync(CancellationToken cancellationToken)
    {
        if (_check is null)
        {
            return true;
        }
        Exception? error = null;
        var healthy = false;
        try
        {
            healthy = await _check(cancellationToken).WaitAsync(_timeout, _time, cancellationToken).ConfigureAwait(false);
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
        _metrics.Failed("health");
        ElectionLog.HealthFailed(_logger, error, _role, _instanceId, Failures, _threshold);
        return Failures < _threshold;
    }
}
