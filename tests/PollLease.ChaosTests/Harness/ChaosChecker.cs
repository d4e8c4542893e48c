using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using PollLease.Polling;

namespace PollLease.ChaosTests.Harness;

/// <summary>A poll a child logged as started (whether or not its append was accepted afterwards).</summary>
public sealed record PollStart(string Instance, string Session, long Token, DateTimeOffset At);

/// <summary>The figures of one run. The first four must be 0; the gap is compared with its bound.</summary>
public sealed record ChaosFigures(
    int DuplicateOwnerWindows,
    int StaleAppends,
    int PollsOutsideLeaseWindow,
    int SessionsLost,
    TimeSpan LongestGap,
    string LongestGapSession,
    TimeSpan GapBound,
    int Records,
    int PollsStarted,
    int Handovers,
    IReadOnlyList<string> Violations)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"duplicate-owner windows {DuplicateOwnerWindows}, stale-token appends accepted {StaleAppends}, polls started outside a lease window {PollsOutsideLeaseWindow}, sessions lost {SessionsLost}, longest unpolled gap {LongestGap.TotalSeconds:0.00} s ({LongestGapSession}) vs bound {GapBound.TotalSeconds:0.00} s; {Records} poll records, {PollsStarted} polls started, {Handovers} owner handovers");
}

/// <summary>
/// Reads what a run left behind (every session's message log, merged over snapshots, and every child's log
/// lines) and computes the guarantees as numbers.
/// </summary>
public static partial class ChaosChecker
{
    /// <summary>Poll starts and lease acquisitions from the children's output.</summary>
    public static (List<PollStart> Starts, List<(string Session, long Token)> Acquired) ParseOutput(IEnumerable<OutputLine> lines)
    {
        var starts = new List<PollStart>();
        var acquired = new List<(string, long)>();
        foreach (var line in lines)
        {
            var m = StartedPattern().Match(line.Text);
            if (m.Success && PollCtlChild.StampOf(line) is { } at)
            {
                starts.Add(new PollStart(m.Groups[1].Value, m.Groups[2].Value, long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), at));
                continue;
            }
            m = AcquiredPattern().Match(line.Text);
            if (m.Success)
            {
                acquired.Add((m.Groups[2].Value, long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)));
            }
        }
        return (starts, acquired);
    }

    /// <param name="records">Every session's poll records in log (append) order.</param>
    /// <param name="starts">Every poll any child started.</param>
    /// <param name="acquired">Every token any child was granted.</param>
    /// <param name="expected">The active sessions the run put in the catalog.</param>
    /// <param name="catalog">The catalog's session ids at the end.</param>
    /// <param name="from">Start of the gap measurement (steady state reached).</param>
    /// <param name="to">End of the gap measurement.</param>
    /// <param name="gapBound">Interval + failover bound (+ any deliberate outage) for this run.</param>
    public static ChaosFigures Check(
        IReadOnlyDictionary<string, List<PollRecord>> records,
        IReadOnlyList<PollStart> starts,
        IEnumerable<(string Session, long Token)> acquired,
        IReadOnlyCollection<string> expected,
        IReadOnlyCollection<string> catalog,
        DateTimeOffset from,
        DateTimeOffset to,
        TimeSpan gapBound)
    {
        var violations = new List<string>();
        int duplicates = 0, stale = 0, outside = 0, handovers = 0;

        // Tokens known per session: from the logs and from every grant a child logged (a grant may never poll).
        var tokens = new Dictionary<string, SortedSet<long>>(StringComparer.Ordinal);
        foreach (var (session, list) in records)
        {
            Tokens(session).UnionWith(list.Select(r => r.Token));
        }
        foreach (var (session, token) in acquired)
        {
            Tokens(session).Add(token);
        }

        foreach (var (session, list) in records)
        {
            long maxToken = 0;
            var instanceOf = new Dictionary<long, string>();
            var lastPollOf = new Dictionary<long, DateTimeOffset>();
            var firstPollOf = new Dictionary<long, DateTimeOffset>();
            foreach (var r in list)
            {
                if (r.Token < maxToken)
                {
                    stale++;
                    violations.Add($"{session}: append under token {r.Token} by {r.Instance} accepted after token {maxToken}");
                }
                maxToken = Math.Max(maxToken, r.Token);
                if (instanceOf.TryGetValue(r.Token, out var owner) && owner != r.Instance)
                {
                    duplicates++;
                    violations.Add($"{session}: token {r.Token} used by both {owner} and {r.Instance}");
                }
                instanceOf.TryAdd(r.Token, r.Instance);
                lastPollOf[r.Token] = lastPollOf.TryGetValue(r.Token, out var l) && l > r.Polled ? l : r.Polled;
                firstPollOf.TryAdd(r.Token, r.Polled);
            }
            // An owner's polls must all come before the next owner's first poll.
            var ordered = firstPollOf.Keys.Order().ToArray();
            for (var i = 1; i < ordered.Length; i++)
            {
                handovers++;
                if (lastPollOf[ordered[i - 1]] >= firstPollOf[ordered[i]])
                {
                    duplicates++;
                    violations.Add($"{session}: token {ordered[i - 1]} ({instanceOf[ordered[i - 1]]}) polled at {lastPollOf[ordered[i - 1]]:O}, after token {ordered[i]} ({instanceOf[ordered[i]]}) began at {firstPollOf[ordered[i]]:O}");
                }
            }
        }

        // A token is max(last + 1, Redis time in ms): a newer token T' was granted no later than T' ms. A poll
        // under token T that started after T' ms started after its lease had passed to someone else.
        foreach (var s in starts)
        {
            if (!tokens.TryGetValue(s.Session, out var known))
            {
                continue;
            }
            var newer = known.GetViewBetween(s.Token + 1, long.MaxValue);
            if (newer.Count > 0 && s.At.ToUnixTimeMilliseconds() > newer.Min)
            {
                outside++;
                violations.Add($"{s.Session}: {s.Instance} started a poll under token {s.Token} at {s.At:O}, after token {newer.Min} was granted at {DateTimeOffset.FromUnixTimeMilliseconds(newer.Min):O}");
            }
        }

        var longest = TimeSpan.Zero;
        var longestSession = "";
        foreach (var session in expected)
        {
            var times = records.TryGetValue(session, out var list)
                ? list.Select(r => r.Polled).Where(t => t >= from && t <= to).Order().ToList()
                : [];
            var previous = from;
            foreach (var t in times.Append(to))
            {
                if (t - previous > longest)
                {
                    longest = t - previous;
                    longestSession = session;
                }
                previous = t;
            }
        }

        var lost = expected.Except(catalog, StringComparer.Ordinal).ToList();
        violations.AddRange(lost.Select(l => $"{l}: missing from the catalog"));
        return new ChaosFigures(duplicates, stale, outside, lost.Count, longest, longestSession, gapBound,
            records.Values.Sum(l => l.Count), starts.Count, handovers, violations);

        SortedSet<long> Tokens(string session)
        {
            if (!tokens.TryGetValue(session, out var set))
            {
                tokens[session] = set = [];
            }
            return set;
        }
    }

    /// <summary>The violations, at most <paramref name="max"/>, one per line.</summary>
    public static string Describe(ChaosFigures figures, int max = 20)
    {
        var text = new StringBuilder(figures.ToString());
        foreach (var v in figures.Violations.Take(max))
        {
            text.Append("\n  ").Append(v);
        }
        return text.ToString();
    }

    [GeneratedRegex(@"Poll started: instance=(\S+) endpoint=(\S+) token=(\d+)")]
    private static partial Regex StartedPattern();

    [GeneratedRegex(@"Lease acquired: instance=(\S+) endpoint=(\S+) token=(\d+)")]
    private static partial Regex AcquiredPattern();
}
