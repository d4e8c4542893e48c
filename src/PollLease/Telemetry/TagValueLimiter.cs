using System.Collections.Concurrent;

namespace PollLease.Telemetry;

/// <summary>
/// Keeps every metric dimension bounded: per instrument and tag, the first <see cref="Limit"/> distinct values pass
/// as they are, later ones become <see cref="Other"/>. The measurement itself is always kept, so totals stay exact;
/// only the breakdown of a crowded tag is coarsened, and <see cref="Coarsened"/> counts how often.
/// </summary>
/// <remarks>
/// Instance ids are the crowded values: <c>from</c> on failovers names the instance whose lease expired, and every
/// restart brings a new id. Application Insights' pre-aggregated metrics stop creating series at 100 values per
/// dimension and then drop measurements (TryGetDataSeries returns false), so the default limit stays well below that.
/// </remarks>
internal sealed class TagValueLimiter
{
    /// <summary>The value a tag gets once its limit is reached.</summary>
    public const string Other = "(other)";

    private readonly ConcurrentDictionary<(string Instrument, string Tag), ConcurrentDictionary<string, byte>> _seen = new();
    private long _coarsened;

    public TagValueLimiter(int limit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        Limit = limit;
    }

    /// <summary>Distinct values kept per instrument and tag.</summary>
    public int Limit { get; }

    /// <summary>Tag values replaced by <see cref="Other"/> so far.</summary>
    public long Coarsened => Interlocked.Read(ref _coarsened);

    /// <summary>The value to report for <paramref name="value"/> of <paramref name="tag"/> on <paramref name="instrument"/>.</summary>
    public string Apply(string instrument, string tag, string value)
    {
        var seen = _seen.GetOrAdd((instrument, tag), _ => new ConcurrentDictionary<string, byte>(StringComparer.Ordinal));
        if (seen.ContainsKey(value))
        {
            return value;
        }
        // Two threads may both pass the count check and add one value each over the limit: a bound of Limit + a few
        // under contention is still a bound.
        if (seen.Count < Limit)
        {
            seen.TryAdd(value, 0);
            return value;
        }
        Interlocked.Increment(ref _coarsened);
        return Other;
    }
}
