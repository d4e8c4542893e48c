using System.Collections;
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
/// From previous owners the work is incremental: a session whose previous owner is live costs an array read, and
/// only sessions that must move (the leaver's, or what over-quota instances shed to a newcomer) are scored against
/// every instance, so a membership change at 100,000 sessions costs a few milliseconds instead of scoring all
/// S x N pairs.
/// </remarks>
internal sealed class BalancedAssignment
{
    /// <summary>Top choices per session a shed session tries before a full scan; deeper choices are rarely needed.</summary>
    private const int Choices = 8;

    private readonly string[] _nodes;
    private readonly int[] _owner;
    private string[][]? _byNode;
    private OwnerView? _view;

    private BalancedAssignment(string[] nodes, int capacity, SessionSet sessions, int[] owner)
    {
        _nodes = nodes;
        Capacity = capacity;
        Sessions = sessions;
        _owner = owner;
    }

    /// <summary>The instances, sorted ordinally and without duplicates.</summary>
    public IReadOnlyList<string> Nodes => _nodes;

    /// <summary>The most sessions any instance may be assigned.</summary>
    public int Capacity { get; }

    /// <summary>Number of sessions assigned.</summary>
    public int Count => _nodes.Length == 0 ? 0 : _owner.Length;

    /// <summary>The largest number of sessions any one instance was assigned.</summary>
    public int MaxLoad => _nodes.Length == 0 ? 0 : ByNode().Max(l => l.Length);

    internal SessionSet Sessions { get; }

    /// <summary>Each session's owner as an index into <see cref="Nodes"/> (numbered as in <see cref="Sessions"/>); -1 without instances.</summary>
    internal int[] OwnerIndexes => _owner;

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
        var set = SessionSet.From(sessions);
        return Compute(nodes, set, previous is null ? null : PreviousOwners.Resolve(set, previous), epsilon, hash);
    }

    /// <summary>The incremental entry point: sessions and previous owners already resolved (the planner keeps both across cycles).</summary>
    internal static BalancedAssignment Compute(IEnumerable<string> nodes, SessionSet set, PreviousOwners? previous, double epsilon, RendezvousHash hash = RendezvousHash.XxHash64)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(set);
        if (double.IsNaN(epsilon) || epsilon < 0 || epsilon > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be between 0 and 1.");
        }
        if (previous is not null && !ReferenceEquals(previous.Sessions, set))
        {
            throw new ArgumentException("The previous owners were resolved onto another session set.", nameof(previous));
        }
        var n = nodes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var count = set.Count;
        var assigned = new int[count];
        if (n.Length == 0)
        {
            Array.Fill(assigned, -1);
            return new BalancedAssignment(n, 0, set, assigned);
        }
        var capacity = CapacityFor(count, n.Length, epsilon);
        if (count == 0)
        {
            return new BalancedAssignment(n, capacity, set, assigned);
        }

        var scorer = new Scorer(n, set, hash);
        // Each session's candidate instance: its previous owner while that one is live, else its best-scored instance
        // (plain rendezvous, which alone moves the minimum on a join or leave but is unbalanced).
        var live = PreviousToLive(previous, n);
        var load = new int[n.Length];
        var stays = new bool[count];
        for (var i = 0; i < count; i++)
        {
            var was = live is null ? -1 : previous!.Owner[i];
            var j = was >= 0 ? live![was] : -1;
            if (j >= 0)
            {
                stays[i] = true;
                assigned[i] = j;
            }
            else
            {
                assigned[i] = scorer.Best(i, null);
            }
            load[assigned[i]]++;
        }
        var quota = Quotas(load, count, capacity, epsilon);

        // Over-quota instances keep the sessions they already had, then their best-scored ones, and shed the rest
        // straight to instances with room (one hop, no displacement chains through full instances: a chain would
        // move a session per hop; and shedding a session an instance already had would move one more).
        var shed = Shed(n.Length, assigned, stays, load, quota, scorer);
        if (shed.Count > 0)
        {
            // Only instances with room can take a shed session (room never grows while placing), so each shed
            // session is scored against those alone: on a join that is the newcomer, not all N.
            var room = Enumerable.Range(0, n.Length).Where(j => load[j] < quota[j]).ToArray();
            var k = Math.Min(Choices, room.Length);
            var pairs = new List<Pair>(shed.Count * k);
            var best = new Dictionary<int, ulong>(shed.Count);
            var top = new Pair[k];
            foreach (var i in shed)
            {
                var filled = 0;
                foreach (var j in room)
                {
                    var score = scorer.ScoreOn(i, j);
                    // Insertion into the session's top-k among the instances with room, best first; ties to the lower index.
                    var pos = filled;
                    while (pos > 0 && top[pos - 1].Score < score)
                    {
                        pos--;
                    }
                    if (pos >= k)
                    {
                        continue;
                    }
                    Array.Copy(top, pos, top, pos + 1, Math.Min(filled, k - 1) - pos);
                    top[pos] = new Pair(score, i, j);
                    filled = Math.Min(filled + 1, k);
                }
                best[i] = top[0].Score;
                pairs.AddRange(top.AsSpan(0, filled));
            }
            pairs.Sort(new PairOrder(set.Ids));
            foreach (var p in pairs)
            {
                if (assigned[p.Session] < 0 && load[p.Node] < quota[p.Node])
                {
                    assigned[p.Session] = p.Node;
                    load[p.Node]++;
                }
            }

            // Sessions squeezed out of their top choices: best instance with room, best-scored sessions first.
            var leftovers = shed.Where(i => assigned[i] < 0).ToList();
            leftovers.Sort((a, b) => a == b ? 0 : best[b].CompareTo(best[a]) is var c && c != 0 ? c : string.CompareOrdinal(set.Ids[a], set.Ids[b]));
            foreach (var i in leftovers)
            {
                var j = scorer.Best(i, j => load[j] < quota[j]);
                assigned[i] = j;
                load[j]++;
            }
        }

        // With slack (epsilon > 0) instances keep what they had up to the larger cap, so a newcomer could be left
        // idle: starting from previous owners, every instance gets at least floor(S/N), its best-scored sessions from
        // instances above that. (Without previous owners plain rendezvous already gives a newcomer its share.)
        var lower = previous is null ? 0 : count / n.Length;
        var needy = Enumerable.Range(0, n.Length).Where(j => load[j] < lower).ToArray();
        if (needy.Length > 0)
        {
            var offers = new List<Pair>();
            foreach (var j in needy)
            {
                for (var i = 0; i < count; i++)
                {
                    if (load[assigned[i]] > lower)
                    {
                        offers.Add(new Pair(scorer.ScoreOn(i, j), i, j));
                    }
                }
            }
            offers.Sort(new PairOrder(set.Ids));
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
        return new BalancedAssignment(n, capacity, set, assigned);
    }

    /// <summary>Maps each previous owner name to its index among the live nodes (-1 when it left); null without previous owners.</summary>
    private static int[]? PreviousToLive(PreviousOwners? previous, string[] nodes)
    {
        if (previous is null)
        {
            return null;
        }
        var map = new int[previous.Names.Length];
        for (var p = 0; p < map.Length; p++)
        {
            map[p] = Array.BinarySearch(nodes, previous.Names[p], StringComparer.Ordinal) is var j && j >= 0 ? j : -1;
        }
        return map;
    }

    /// <summary>
    /// Unassigns what over-quota instances shed (marking them -1) and returns those sessions. Only the over-quota
    /// instances' candidates are looked at: each keeps the sessions it already had, then its best-scored ones
    /// (ties by id), and sheds the rest.
    /// </summary>
    private static List<int> Shed(int nodes, int[] assigned, bool[] stays, int[] load, int[] quota, Scorer scorer)
    {
        var shed = new List<int>();
        var over = new List<int>?[nodes];
        var anyOver = false;
        for (var j = 0; j < nodes; j++)
        {
            if (load[j] > quota[j])
            {
                over[j] = new List<int>(load[j]);
                anyOver = true;
            }
        }
        if (!anyOver)
        {
            return shed;
        }
        for (var i = 0; i < assigned.Length; i++)
        {
            over[assigned[i]]?.Add(i);
        }
        for (var j = 0; j < nodes; j++)
        {
            if (over[j] is not { } candidates)
            {
                continue;
            }
            var keep = quota[j];
            var had = candidates.Where(i => stays[i]).ToList();
            var fresh = candidates.Where(i => !stays[i]).ToList();
            if (had.Count > keep)
            {
                shed.AddRange(fresh);
                shed.AddRange(scorer.Worst(had, j, had.Count - keep));
            }
            else if (fresh.Count > keep - had.Count)
            {
                shed.AddRange(scorer.Worst(fresh, j, fresh.Count - (keep - had.Count)));
            }
            load[j] = keep;
        }
        foreach (var i in shed)
        {
            assigned[i] = -1;
        }
        return shed;
    }

    /// <summary>Every session's assigned instance: what <see cref="Compute(IEnumerable{string}, IEnumerable{string}, double, IReadOnlyDictionary{string, string}?)"/> takes as previous owners.</summary>
    public IReadOnlyDictionary<string, string> Owners => _view ??= new OwnerView(this);

    /// <summary>The instance a session is assigned to, or null when the session is unknown or there are no instances.</summary>
    /// <param name="sessionId">The session.</param>
    public string? PreferredOwner(string sessionId) =>
        sessionId is not null && Sessions.Index.TryGetValue(sessionId, out var i) && _owner[i] >= 0 ? _nodes[_owner[i]] : null;

    /// <summary>True when <paramref name="instanceId"/> is the session's assigned instance.</summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="instanceId">The instance.</param>
    public bool IsPreferredOwner(string sessionId, string instanceId) => string.Equals(PreferredOwner(sessionId), instanceId, StringComparison.Ordinal);

    /// <summary>The sessions assigned to an instance.</summary>
    /// <param name="instanceId">The instance.</param>
    public IReadOnlyList<string> SessionsOf(string instanceId)
    {
        var j = Array.BinarySearch(_nodes, instanceId, StringComparer.Ordinal);
        return j >= 0 ? ByNode()[j] : [];
    }

    private string[][] ByNode()
    {
        if (_byNode is { } built)
        {
            return built;
        }
        var counts = new int[_nodes.Length];
        foreach (var j in _owner)
        {
            counts[j]++;
        }
        var lists = new string[_nodes.Length][];
        for (var j = 0; j < lists.Length; j++)
        {
            lists[j] = new string[counts[j]];
            counts[j] = 0;
        }
        for (var i = 0; i < _owner.Length; i++)
        {
            var j = _owner[i];
            lists[j][counts[j]++] = Sessions.Ids[i];
        }
        // Racing threads build equal lists; either may win.
        _byNode = lists;
        return lists;
    }

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

    private readonly record struct Pair(ulong Score, int Session, int Node);

    /// <summary>Best score first; ties by session id (never by its number, which depends on input order), then node.</summary>
    private sealed class PairOrder(string[] ids) : IComparer<Pair>
    {
        public int Compare(Pair x, Pair y)
        {
            var c = y.Score.CompareTo(x.Score);
            if (c != 0)
            {
                return c;
            }
            c = x.Session == y.Session ? 0 : string.CompareOrdinal(ids[x.Session], ids[y.Session]);
            return c != 0 ? c : x.Node.CompareTo(y.Node);
        }
    }

    /// <summary>Rendezvous scores of sessions against the sorted nodes, computed only where needed.</summary>
    private sealed class Scorer
    {
        private readonly string[] _ids;
        private readonly int _nodes;
        private readonly ulong[]? _sessionHash;
        private readonly ulong[] _nodeHash;
        private readonly byte[][] _nodeBytes;
        private readonly byte[] _buffer;

        public Scorer(string[] nodes, SessionSet set, RendezvousHash hash)
        {
            _ids = set.Ids;
            _nodes = nodes.Length;
            if (hash == RendezvousHash.XxHash64)
            {
                _sessionHash = set.Hashes;
                _nodeHash = nodes.Select(RendezvousScore.Hash).ToArray();
                _nodeBytes = [];
                _buffer = [];
            }
            else
            {
                _nodeHash = [];
                _nodeBytes = nodes.Select(Encoding.UTF8.GetBytes).ToArray();
                _buffer = new byte[Encoding.UTF8.GetMaxByteCount(_ids.Max(x => x.Length)) + 1 + _nodeBytes.Max(b => b.Length)];
            }
        }

        /// <summary>The session's score on node <paramref name="node"/>.</summary>
        public ulong ScoreOn(int session, int node)
        {
            if (_sessionHash is not null)
            {
                return RendezvousScore.Mix(_sessionHash[session], _nodeHash[node]);
            }
            var prefix = Encoding.UTF8.GetBytes(_ids[session], _buffer);
            _buffer[prefix++] = 0;
            _nodeBytes[node].CopyTo(_buffer, prefix);
            return RendezvousScore.Fnv1aScore(_buffer.AsSpan(0, prefix + _nodeBytes[node].Length));
        }

        /// <summary>The session's best-scored node among those <paramref name="allowed"/> (all when null); ties to the lower index.</summary>
        public int Best(int session, Func<int, bool>? allowed)
        {
            var best = -1;
            var bestScore = 0UL;
            for (var j = 0; j < _nodes; j++)
            {
                if (allowed is not null && !allowed(j))
                {
                    continue;
                }
                var score = ScoreOn(session, j);
                if (best < 0 || score > bestScore)
                {
                    best = j;
                    bestScore = score;
                }
            }
            return best;
        }

        /// <summary>
        /// The <paramref name="count"/> sessions that come last by (score on <paramref name="node"/> descending, id):
        /// a bounded heap on the scores, so an instance shedding a few of its thousands of sessions does not sort
        /// them all. Only when two sessions tie on the 64-bit score at the boundary is the id consulted.
        /// </summary>
        public List<int> Worst(List<int> sessions, int node, int count)
        {
            var scores = new ulong[sessions.Count];
            // Max-heap of the lowest scores seen (priorities are complemented): its top is the one to evict.
            var heap = new PriorityQueue<int, ulong>(count + 1);
            for (var x = 0; x < scores.Length; x++)
            {
                var score = scores[x] = ScoreOn(sessions[x], node);
                if (heap.Count < count)
                {
                    heap.Enqueue(x, ~score);
                }
                else if (heap.TryPeek(out _, out var top) && score < ~top)
                {
                    heap.DequeueEnqueue(x, ~score);
                }
            }
            if (!heap.TryPeek(out _, out var boundary))
            {
                return [];
            }
            var tied = 0;
            foreach (var score in scores)
            {
                tied += score == ~boundary ? 1 : 0;
            }
            if (tied == 1)
            {
                return heap.UnorderedItems.Select(e => sessions[e.Element]).ToList();
            }
            // Equal scores at the boundary: which of them go must not depend on the input's order.
            var order = Enumerable.Range(0, scores.Length)
                .OrderByDescending(x => scores[x]).ThenBy(x => _ids[sessions[x]], StringComparer.Ordinal);
            return order.Skip(scores.Length - count).Select(x => sessions[x]).ToList();
        }
    }

    /// <summary>The assignment as a session-to-instance dictionary, without copying it.</summary>
    internal sealed class OwnerView(BalancedAssignment assignment) : IReadOnlyDictionary<string, string>
    {
        public BalancedAssignment Assignment { get; } = assignment;

        public int Count => Assignment.Count;

        public IEnumerable<string> Keys => Assignment.Count == 0 ? [] : Assignment.Sessions.Ids;

        public IEnumerable<string> Values => Keys.Select(k => Assignment.PreferredOwner(k)!);

        public string this[string key] => Assignment.PreferredOwner(key) ?? throw new KeyNotFoundException($"Session '{key}' is not assigned.");

        public bool ContainsKey(string key) => Assignment.PreferredOwner(key) is not null;

        public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out string value)
        {
            value = Assignment.PreferredOwner(key);
            return value is not null;
        }

        public IEnumerator<KeyValuePair<string, string>> GetEnumerator()
        {
            if (Assignment.Count == 0)
            {
                yield break;
            }
            var ids = Assignment.Sessions.Ids;
            for (var i = 0; i < ids.Length; i++)
            {
                yield return new KeyValuePair<string, string>(ids[i], Assignment._nodes[Assignment._owner[i]]);
            }
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
