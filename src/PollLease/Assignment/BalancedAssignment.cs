using System.Text;

namespace PollLease.Assignment;

/// <summary>
/// Bounded-load rendezvous assignment: every instance that sees the same live instances and active sessions
/// computes the same owner for every session, and no instance gets more than <see cref="Capacity"/> sessions
/// (<c>ceil(S/N)</c>, or <c>ceil(S/N * (1 + epsilon))</c> to trade exact balance for less movement). With
/// epsilon 0 every instance gets <c>floor(S/N)</c> or <c>ceil(S/N)</c>.
/// </summary>
/// <remarks>
/// Each session ranks the instances by a 64-bit rendezvous score (XxHash64 of <c>session \0 instance</c>). Its
/// candidate is its previous owner when one is given and live, else its best-scored instance (plain rendezvous,
/// which moves the minimum when instances come and go but is unbalanced). Each instance then has a quota
/// (<c>floor(S/N)</c>, plus one for the <c>S mod N</c> instances with the most candidates); an instance over its
/// quota keeps the sessions it already had, then its best-scored ones, and sheds the rest straight to their
/// best-scored instances with room. Shedding in one hop matters: a greedy fill that
/// displaced sessions through full instances moved one session per hop (1.9 x the minimum on a join, against
/// 1.3 x now; README, "Balance and failover").
/// </remarks>
internal sealed class BalancedAssignment
{
    /// <summary>Top choices per session a shed session tries before a full scan; deeper choices are rarely needed.</summary>
    private const int Choices = 8;

    private readonly Dictionary<string, string> _owner;
    private readonly Dictionary<string, string> _fallback;
    private readonly Dictionary<string, List<string>> _byNode;
    private readonly Dictionary<string, List<string>> _fallbackByNode;

    private BalancedAssignment(IReadOnlyList<string> nodes, int capacity, Dictionary<string, string> owner, Dictionary<string, string> fallback)
    {
        Nodes = nodes;
        Capacity = capacity;
        _owner = owner;
        _fallback = fallback;
        _byNode = nodes.ToDictionary(n => n, _ => new List<string>(), StringComparer.Ordinal);
        foreach (var (session, node) in owner)
        {
            _byNode[node].Add(session);
        }
        _fallbackByNode = nodes.ToDictionary(n => n, _ => new List<string>(), StringComparer.Ordinal);
        foreach (var (session, node) in fallback)
        {
            _fallbackByNode[node].Add(session);
        }
    }

    /// <summary>The instances, sorted ordinally and without duplicates.</summary>
    public IReadOnlyList<string> Nodes { get; }

    /// <summary>The most sessions any instance may be assigned.</summary>
    public int Capacity { get; }

    /// <summary>Number of sessions assigned.</summary>
    public int Count => _owner.Count;

    /// <summary>The largest number of sessions any one instance was assigned.</summary>
    public int MaxLoad => _byNode.Count == 0 ? 0 : _byNode.Values.Max(l => l.Count);

    /// <summary>Computes the assignment of <paramref name="sessions"/> to <paramref name="nodes"/> (order and duplicates do not matter).</summary>
    /// <param name="nodes">Live instance ids.</param>
    /// <param name="sessions">Active session ids.</param>
    /// <param name="epsilon">Extra capacity over <c>ceil(S/N)</c> as a fraction, 0 (exact balance) to 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epsilon"/> is outside 0..1.</exception>
    public static BalancedAssignment Compute(IEnumerable<string> nodes, IEnumerable<string> sessions, double epsilon = 0) =>
        Compute(nodes, sessions, epsilon, null, RendezvousHash.XxHash64);

    /// <summary>
    /// Computes the assignment starting from <paramref name="previous"/> owners: a session stays with its previous
    /// owner while that instance is in <paramref name="nodes"/> and within its share, so a join moves only the
    /// newcomer's share and a leave only the leaver's sessions (plus the few that rounding of the shares forces).
    /// The result depends only on the arguments, so every instance that starts from the same previous owners
    /// computes the same assignment; computing again from the result with the same nodes and sessions returns it
    /// unchanged.
    /// </summary>
    /// <param name="nodes">Live instance ids.</param>
    /// <param name="sessions">Active session ids.</param>
    /// <param name="epsilon">Extra capacity over <c>ceil(S/N)</c> as a fraction, 0 (exact balance) to 1.</param>
    /// <param name="previous">Session to owner of an earlier assignment (e.g. <see cref="Owners"/>); null or empty for none.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epsilon"/> is outside 0..1.</exception>
    public static BalancedAssignment Compute(IEnumerable<string> nodes, IEnumerable<string> sessions, double epsilon, IReadOnlyDictionary<string, string>? previous) =>
        Compute(nodes, sessions, epsilon, previous, RendezvousHash.XxHash64);

    internal static BalancedAssignment Compute(IEnumerable<string> nodes, IEnumerable<string> sessions, double epsilon, RendezvousHash hash) =>
        Compute(nodes, sessions, epsilon, null, hash);

    internal static BalancedAssignment Compute(IEnumerable<string> nodes, IEnumerable<string> sessions, double epsilon, IReadOnlyDictionary<string, string>? previous, RendezvousHash hash)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(sessions);
        if (double.IsNaN(epsilon) || epsilon < 0 || epsilon > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be between 0 and 1.");
        }
        var n = nodes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var s = sessions.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var owner = new Dictionary<string, string>(s.Length, StringComparer.Ordinal);
        var fallback = new Dictionary<string, string>(s.Length, StringComparer.Ordinal);
        if (n.Length == 0)
        {
            return new BalancedAssignment(n, 0, owner, fallback);
        }
        var capacity = CapacityFor(s.Length, n.Length, epsilon);
        if (s.Length == 0)
        {
            return new BalancedAssignment(n, capacity, owner, fallback);
        }

        var k = Math.Min(Choices, n.Length);
        var nodeBytes = n.Select(Encoding.UTF8.GetBytes).ToArray();
        var maxNode = nodeBytes.Max(b => b.Length);
        var topScore = new ulong[s.Length * k];
        var topNode = new int[s.Length * k];
        var buffer = new byte[Encoding.UTF8.GetMaxByteCount(s.Max(x => x.Length)) + 1 + maxNode];
        for (var i = 0; i < s.Length; i++)
        {
            var prefix = Encoding.UTF8.GetBytes(s[i], buffer);
            buffer[prefix++] = 0;
            var filled = 0;
            var baseIndex = i * k;
            for (var j = 0; j < n.Length; j++)
            {
                nodeBytes[j].CopyTo(buffer, prefix);
                var score = RendezvousScore.Score(buffer.AsSpan(0, prefix + nodeBytes[j].Length), hash);
                // Insertion into the session's top-k, best first; ties go to the lower node index.
                var pos = filled;
                while (pos > 0 && topScore[baseIndex + pos - 1] < score)
                {
                    pos--;
                }
                if (pos >= k)
                {
                    continue;
                }
                var last = Math.Min(filled, k - 1);
                for (var m = last; m > pos; m--)
                {
                    topScore[baseIndex + m] = topScore[baseIndex + m - 1];
                    topNode[baseIndex + m] = topNode[baseIndex + m - 1];
                }
                topScore[baseIndex + pos] = score;
                topNode[baseIndex + pos] = j;
                filled = Math.Min(filled + 1, k);
            }
        }
        // Each session's candidate instance: its previous owner while that one is live, else its best-scored instance
        // (plain rendezvous, which alone moves the minimum on a join or leave but is unbalanced).
        var index = new Dictionary<string, int>(n.Length, StringComparer.Ordinal);
        for (var j = 0; j < n.Length; j++)
        {
            index[n[j]] = j;
        }
        var load = new int[n.Length];
        var assigned = new int[s.Length];
        var candidateScore = new ulong[s.Length];
        var stays = new bool[s.Length];
        for (var i = 0; i < s.Length; i++)
        {
            assigned[i] = topNode[i * k];
            candidateScore[i] = topScore[i * k];
            if (previous is not null && previous.TryGetValue(s[i], out var was) && index.TryGetValue(was, out var j))
            {
                stays[i] = true;
                if (j != assigned[i])
                {
                    assigned[i] = j;
                    candidateScore[i] = RendezvousScore.Score(s[i], was, hash);
                }
            }
            load[assigned[i]]++;
        }
        var quota = Quotas(load, s.Length, capacity, epsilon);

        // Over-quota instances keep the sessions they already had, then their best-scored ones, and shed the rest
        // straight to instances with room (one hop, no displacement chains through full instances: a chain would
        // move a session per hop; and shedding a session an instance already had would move one more).
        var byScore = Enumerable.Range(0, s.Length).OrderByDescending(i => stays[i]).ThenByDescending(i => candidateScore[i]).ThenBy(i => i);
        var kept = new int[n.Length];
        var shed = new List<int>();
        foreach (var i in byScore)
        {
            var j = assigned[i];
            if (kept[j] < quota[j])
            {
                kept[j]++;
            }
            else
            {
                assigned[i] = -1;
                shed.Add(i);
            }
        }
        Array.Copy(kept, load, n.Length);
        var shedPairs = new List<Pair>(shed.Count * k);
        foreach (var i in shed)
        {
            // The candidate itself is full (that is why the session was shed), so its pair never matches below.
            for (var m = 0; m < k; m++)
            {
                shedPairs.Add(new Pair(topScore[(i * k) + m], i, topNode[(i * k) + m]));
            }
        }
        shedPairs.Sort();
        foreach (var p in shedPairs)
        {
            if (assigned[p.Session] < 0 && load[p.Node] < quota[p.Node])
            {
                assigned[p.Session] = p.Node;
                load[p.Node]++;
            }
        }

        // Sessions squeezed out of all their top choices: best instance with room, best-scored sessions first.
        var leftovers = Enumerable.Range(0, s.Length).Where(i => assigned[i] < 0).OrderByDescending(i => topScore[i * k]).ThenBy(i => i).ToList();
        foreach (var i in leftovers)
        {
            var prefix = Encoding.UTF8.GetBytes(s[i], buffer);
            buffer[prefix++] = 0;
            var best = -1;
            var bestScore = 0UL;
            for (var j = 0; j < n.Length; j++)
            {
                if (load[j] >= quota[j])
                {
                    continue;
                }
                nodeBytes[j].CopyTo(buffer, prefix);
                var score = RendezvousScore.Score(buffer.AsSpan(0, prefix + nodeBytes[j].Length), hash);
                if (best < 0 || score > bestScore)
                {
                    best = j;
                    bestScore = score;
                }
            }
            assigned[i] = best;
            load[best]++;
        }

        // With slack (epsilon > 0) instances keep what they had up to the larger cap, so a newcomer could be left
        // idle: starting from previous owners, every instance gets at least floor(S/N), its best-scored sessions from
        // instances above that. (Without previous owners plain rendezvous already gives a newcomer its share.)
        var lower = previous is null ? 0 : s.Length / n.Length;
        var needy = Enumerable.Range(0, n.Length).Where(j => load[j] < lower).ToArray();
        if (needy.Length > 0)
        {
            var offers = new List<Pair>();
            foreach (var j in needy)
            {
                for (var i = 0; i < s.Length; i++)
                {
                    if (load[assigned[i]] > lower)
                    {
                        offers.Add(new Pair(RendezvousScore.Score(s[i], n[j], hash), i, j));
                    }
                }
            }
            offers.Sort();
            foreach (var p in offers)
            {
                var from = assigned[p.Session];
                if (load[p.Node] < lower && load[from] > lower && from != p.Node && Array.IndexOf(needy, from) < 0)
                {
                    assigned[p.Session] = p.Node;
                    load[from]--;
                    load[p.Node]++;
                }
            }
        }

        for (var i = 0; i < s.Length; i++)
        {
            owner[s[i]] = n[assigned[i]];
            if (n.Length > 1)
            {
                // The takeover candidate: the best-scored other instance.
                var alternative = topNode[i * k] == assigned[i] ? topNode[(i * k) + 1] : topNode[i * k];
                fallback[s[i]] = n[alternative];
            }
        }
        return new BalancedAssignment(n, capacity, owner, fallback);
    }

    /// <summary>Every session's assigned instance: what <see cref="Compute(IEnumerable{string}, IEnumerable{string}, double, IReadOnlyDictionary{string, string}?)"/> takes as previous owners.</summary>
    public IReadOnlyDictionary<string, string> Owners => _owner;

    /// <summary>The instance a session is assigned to, or null when the session is unknown or there are no instances.</summary>
    /// <param name="sessionId">The session.</param>
    public string? PreferredOwner(string sessionId) => _owner.GetValueOrDefault(sessionId);

    /// <summary>True when <paramref name="instanceId"/> is the session's assigned instance.</summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="instanceId">The instance.</param>
    public bool IsPreferredOwner(string sessionId, string instanceId) =>
        _owner.TryGetValue(sessionId, out var owner) && string.Equals(owner, instanceId, StringComparison.Ordinal);

    /// <summary>The sessions assigned to an instance.</summary>
    /// <param name="instanceId">The instance.</param>
    public IReadOnlyList<string> SessionsOf(string instanceId) => _byNode.TryGetValue(instanceId, out var list) ? list : [];

    /// <summary>The sessions an instance is the takeover candidate for (see <see cref="Fallback"/>).</summary>
    internal IReadOnlyList<string> FallbackSessionsOf(string instanceId) => _fallbackByNode.TryGetValue(instanceId, out var list) ? list : [];

    /// <summary>The instance that takes a session over when its assigned instance stops renewing before the fleet notices it is gone.</summary>
    internal string? Fallback(string sessionId) => _fallback.GetValueOrDefault(sessionId);

    internal static int CapacityFor(int sessions, int nodes, double epsilon)
    {
        var exact = (sessions + nodes - 1) / nodes;
        if (epsilon <= 0)
        {
            return exact;
        }
        return Math.Max(exact, (int)Math.Ceiling((sessions * (1 + epsilon) / nodes) - 1e-9));
    }

    /// <summary>
    /// Each instance's share: <paramref name="capacity"/> with epsilon; with exact balance <c>floor(S/N)</c>, plus
    /// one for the <c>S mod N</c> instances with the most candidate sessions (they would shed it otherwise, so a
    /// join or leave changes who holds the extra one as little as the loads themselves change).
    /// </summary>
    private static int[] Quotas(int[] load, int sessions, int capacity, double epsilon)
    {
        var quota = new int[load.Length];
        if (epsilon > 0)
        {
            Array.Fill(quota, capacity);
            return quota;
        }
        Array.Fill(quota, sessions / load.Length);
        var extra = sessions % load.Length;
        foreach (var j in Enumerable.Range(0, load.Length).OrderByDescending(j => load[j]).ThenBy(j => j).Take(extra))
        {
            quota[j]++;
        }
        return quota;
    }

    private readonly record struct Pair(ulong Score, int Session, int Node) : IComparable<Pair>
    {
        public int CompareTo(Pair other)
        {
            var c = other.Score.CompareTo(Score);
            if (c != 0)
            {
                return c;
            }
            c = Session.CompareTo(other.Session);
            return c != 0 ? c : Node.CompareTo(other.Node);
        }
    }
}
