using System.Globalization;

namespace PollLease.ChaosTests.Harness;

/// <summary>What the instances' own poll logs say about ownership, whatever the fenced message log accepted.</summary>
/// <param name="DuplicateOwners">A token polled under by two instances, or an older owner starting a poll after a newer owner's first poll.</param>
/// <param name="PollsStarted">Poll starts read from the logs.</param>
/// <param name="Violations">One line each.</param>
public sealed record PollLogFigures(int DuplicateOwners, int PollsStarted, IReadOnlyList<string> Violations)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"from the poll logs: {PollsStarted} polls started, duplicate owners {DuplicateOwners}")
        + string.Concat(Violations.Take(20).Select(v => "\n  " + v));
}

/// <summary>
/// Reads the children's <c>Poll started ... token=</c> lines: an upstream call the fence rejects afterwards is still
/// a second poll, so ownership is checked where the calls are made. (Polls started after a newer token's grant, from
/// the same lines and the <c>Lease acquired</c> ones, are <see cref="ChaosFigures.PollsOutsideLeaseWindow"/>.)
/// </summary>
public static class PollLogChecker
{
    public static PollLogFigures Check(IEnumerable<PollCtlChild> children) => Check(children.SelectMany(c => c.Lines));

    /// <summary>The same from log lines (every child's, in any order).</summary>
    public static PollLogFigures Check(IEnumerable<OutputLine> lines)
    {
        var (starts, _) = ChaosChecker.ParseOutput(lines);
        var violations = new List<string>();
        var duplicates = 0;
        foreach (var session in starts.GroupBy(s => s.Session))
        {
            var byToken = session.GroupBy(s => s.Token).OrderBy(g => g.Key).ToArray();
            foreach (var token in byToken.Where(t => t.Select(s => s.Instance).Distinct().Count() > 1))
            {
                duplicates++;
                violations.Add($"{session.Key}: token {token.Key} polled under by {string.Join(" and ", token.Select(s => s.Instance).Distinct())}");
            }
            for (var i = 1; i < byToken.Length; i++)
            {
                var older = byToken[i - 1];
                var newer = byToken[i];
                var lastOld = older.Max(s => s.At);
                var firstNew = newer.Min(s => s.At);
                if (lastOld >= firstNew)
                {
                    duplicates++;
                    violations.Add($"{session.Key}: {older.First().Instance} started a poll under token {older.Key} at {lastOld:HH:mm:ss.fff}, after {newer.First().Instance} began polling under token {newer.Key} at {firstNew:HH:mm:ss.fff}");
                }
            }
        }
        return new PollLogFigures(duplicates, starts.Count, violations);
    }
}
