namespace PollLease.Election;

/// <summary>Delays of the election loop: jittered retries and capped exponential backoff, so a fleet that lost Redis together does not retry in step.</summary>
internal static class ElectionBackoff
{
    /// <summary>The retry period stretched by up to 20% (client-go's JitterFactor), so candidates drift apart.</summary>
    /// <param name="period">The retry period.</param>
    /// <param name="random">A uniform sample in [0, 1).</param>
    public static TimeSpan Jittered(TimeSpan period, double random) =>
        period * (1 + ElectionOptionsValidator.RetryJitter * random);

    /// <summary>
    /// After <paramref name="failures"/> consecutive errors: RetryPeriod x 2^(failures - 1), capped at
    /// <paramref name="max"/>, with "equal jitter" (half fixed, half random) so a fleet does not retry in step.
    /// </summary>
    /// <param name="failures">Consecutive failures, at least 1.</param>
    /// <param name="retryPeriod">The base delay.</param>
    /// <param name="max">The cap.</param>
    /// <param name="random">A uniform sample in [0, 1).</param>
    public static TimeSpan Compute(int failures, TimeSpan retryPeriod, TimeSpan max, double random)
    {
        var exponent = Math.Clamp(failures - 1, 0, 30);
        var raw = Math.Min(retryPeriod.TotalMilliseconds * Math.Pow(2, exponent), max.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(raw / 2 + raw / 2 * random);
    }
}
