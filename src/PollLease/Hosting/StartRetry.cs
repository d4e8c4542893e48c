using PollLease.Election;

namespace PollLease.Hosting;

/// <summary>
/// Retries a start step that must succeed before an instance can work (the Redis connect, the first registration)
/// until it does or the host stops: capped, jittered exponential backoff, and every failure reported with its count and
/// the delay before the next attempt. An outage at start is waited out, never fatal: the worker must come up and
/// answer the Functions host whether or not Redis does.
/// </summary>
internal static class StartRetry
{
    /// <summary>The first retry delay; it doubles per failure up to <see cref="MaxDelay"/>.</summary>
    public static readonly TimeSpan FirstDelay = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two attempts.</summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Runs <paramref name="attempt"/> until it returns. Cancellation of <paramref name="stopping"/> ends the retries
    /// with an <see cref="OperationCanceledException"/>; anything else an attempt throws is retried.
    /// </summary>
    /// <param name="attempt">One attempt; sees <paramref name="stopping"/>.</param>
    /// <param name="failed">Told of each failure: the exception, the number of failures so far, the delay before the next attempt.</param>
    /// <param name="time">Clock for the delays.</param>
    /// <param name="stopping">Ends the retries.</param>
    public static async Task<T> UntilDoneAsync<T>(Func<CancellationToken, Task<T>> attempt, Action<Exception, int, TimeSpan> failed, TimeProvider time, CancellationToken stopping)
    {
        for (var failures = 1; ; failures++)
        {
            try
            {
                return await attempt(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (!stopping.IsCancellationRequested)
            {
                var delay = ElectionBackoff.Compute(failures, FirstDelay, MaxDelay, Random.Shared.NextDouble());
                failed(e, failures, delay);
                await Task.Delay(delay, time, stopping).ConfigureAwait(false);
            }
        }
    }
}
