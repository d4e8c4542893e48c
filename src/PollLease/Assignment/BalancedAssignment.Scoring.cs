using System.Collections;
using System.Text;

namespace PollLease.Assignment;

/// <summary>The assignment's scoring (rendezvous scores computed only where needed, best first) and its owner view.</summary>
internal sealed partial class BalancedAssignment
{
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
