using System.Diagnostics;
using System.Globalization;
using PollLease.Messages;
using PollLease.Polling;
using PollLease.Sessions;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace PollLease.ChaosTests.Harness;

/// <summary>
/// One chaos run: a Redis server child (redis-server, else `pollctl server`), a catalog of sessions with the <c>record</c> handler, `pollctl run`
/// children joining and leaving, and the snapshots of every session's message log the checker reads.
/// </summary>
public sealed class ChaosRun : IAsyncDisposable
{
    /// <summary>Short enough that a run sees many failovers; renew and heartbeat every second (a third).</summary>
    public static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(3);

    /// <summary>The shortest interval a session may have.</summary>
    public static readonly TimeSpan Interval = PollSession.MinInterval;

    /// <summary>
    /// A crashed owner's session is polled again within its interval, plus the lease TTL (the takeover waits for
    /// the expiry), plus one renew interval (the last renew may have been just before the crash), plus the first
    /// poll's jitter (10 % of the interval).
    /// </summary>
    public static readonly TimeSpan GapBound = Interval + LeaseTtl + LeaseTtl / 3 + Interval * 0.1;

    private readonly ITestOutputHelper _output;
    private readonly Dictionary<string, List<PollRecord>> _records = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<(long, string, DateTimeOffset)>> _seen = new(StringComparer.Ordinal);
    private readonly List<PollCtlChild> _children = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private readonly RedisChild? _redis;

    private ChaosRun(ITestOutputHelper output, RedisChild? redis, string connectionString, ConnectionMultiplexer admin, string prefix, IReadOnlyList<string> sessions)
    {
        _output = output;
        _redis = redis;
        ConnectionString = connectionString;
        Admin = admin;
        Prefix = prefix;
        Sessions = sessions;
        Catalog = new SessionCatalog(admin, prefix);
        Log = new MessageLog(admin, prefix);
    }

    /// <summary>The run's own redis-server (runs started on a topology have none).</summary>
    public RedisChild Redis => _redis ?? throw new InvalidOperationException("This run was started on a Redis topology the test owns, not on a redis-server of its own.");

    /// <summary>What the children connect to.</summary>
    public string ConnectionString { get; }

    public ConnectionMultiplexer Admin { get; }

    public string Prefix { get; }

    public IReadOnlyList<string> Sessions { get; }

    public SessionCatalog Catalog { get; }

    public MessageLog Log { get; }

    public IReadOnlyList<PollCtlChild> Children => _children;

    public static async Task<ChaosRun> StartAsync(ITestOutputHelper output, int sessions = 30)
    {
        var redis = await RedisChild.StartAsync();
        var run = await StartAsync(output, redis, redis.ConnectionString, "chaos" + Guid.NewGuid().ToString("N")[..8], sessions);
        run.Note($"{redis.Kind} on port {redis.Port}");
        return run;
    }

    /// <summary>
    /// A run on a topology the test owns and disposes itself (master and replica, a cluster): the children and the
    /// checker connect with <paramref name="connectionString"/>, the fleet's keys start with <paramref name="prefix"/>.
    /// </summary>
    public static Task<ChaosRun> StartOnAsync(ITestOutputHelper output, string connectionString, string prefix, int sessions = 30) =>
        StartAsync(output, null, connectionString, prefix, sessions);

    private static async Task<ChaosRun> StartAsync(ITestOutputHelper output, RedisChild? redis, string connectionString, string prefix, int sessions)
    {
        var admin = await ConnectionMultiplexer.ConnectAsync(connectionString);
        var ids = Enumerable.Range(0, sessions).Select(i => $"chaos-{i:D3}").ToArray();
        var run = new ChaosRun(output, redis, connectionString, admin, prefix, ids);
        await run.LoadCatalogAsync();
        run.Note($"prefix {prefix}, {sessions} sessions every {Interval.TotalSeconds:0} s, lease TTL {LeaseTtl.TotalSeconds:0} s");
        return run;
    }

    /// <summary>Puts every session in the catalog (what `pollctl apply` does after Redis lost its data).</summary>
    public async Task LoadCatalogAsync()
    {
        foreach (var id in Sessions)
        {
            await Catalog.UpsertAsync(new PollSession(id, "record", Interval, false, new Dictionary<string, string>()));
        }
    }

    /// <summary>Starts `pollctl run --plain` with <paramref name="instances"/> instances, against Redis or <paramref name="connection"/>.</summary>
    /// <param name="instances">Instances in the child process.</param>
    /// <param name="connection">Another connection string (a proxy, another topology); the run's own by default.</param>
    /// <param name="environment">Extra environment variables (configuration such as <c>PollLease__Janitor__Interval</c>).</param>
    public PollCtlChild StartChild(int instances, string? connection = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var name = $"p{_children.Count}";
        var child = new PollCtlChild(name,
            ["run", "--plain", "--no-sample", "--instances", instances.ToString(CultureInfo.InvariantCulture),
             "--lease-ttl", LeaseTtl.ToString("c", CultureInfo.InvariantCulture), "--redis", connection ?? ConnectionString, "--prefix", Prefix],
            new Dictionary<string, string>
            {
                // Soak runs must not trim the evidence; snapshots are merged anyway.
                ["PollLease__Messages__MaxLength"] = "100000",
            }.Concat(environment ?? new Dictionary<string, string>()).ToDictionary());
        _children.Add(child);
        Note($"started {name} (pid {child.Pid}, {instances} instance(s))");
        return child;
    }

    public void Note(string text) => _output.WriteLine($"[{_clock.Elapsed.TotalSeconds,7:0.00} s] {text}");

    /// <summary>The owner of every session's lease (null when unowned) and the live instances.</summary>
    public async Task<(Dictionary<string, (string Owner, long Token)?> Leases, HashSet<string> Live)> ReadLeasesAsync()
    {
        var db = Admin.GetDatabase();
        var keys = Sessions.Select(s => (RedisKey)$"{{{Prefix}}}:lease:{s}").ToArray();
        var values = await db.StringGetAsync(keys);
        var leases = new Dictionary<string, (string, long)?>(StringComparer.Ordinal);
        for (var i = 0; i < keys.Length; i++)
        {
            var v = (string?)values[i];
            var bar = v?.LastIndexOf('|') ?? -1;
            leases[Sessions[i]] = bar > 0 && long.TryParse(v.AsSpan(bar + 1), CultureInfo.InvariantCulture, out var token) ? (v![..bar], token) : null;
        }
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var live = (await db.SortedSetRangeByScoreAsync($"{{{Prefix}}}:nodes", now, double.PositiveInfinity)).Select(v => (string)v!).ToHashSet(StringComparer.Ordinal);
        return (leases, live);
    }

    /// <summary>
    /// Waits until exactly <paramref name="instances"/> instances are live and every session is leased by one of
    /// them with floor(S/N) or ceil(S/N) sessions each. With <paramref name="except"/>, only the other sessions
    /// must be leased, and the balance is not checked.
    /// </summary>
    public Task WaitBalancedAsync(int instances, TimeSpan timeout, IReadOnlyCollection<string>? except = null) => UntilAsync(async () =>
    {
        var (leases, live) = await ReadLeasesAsync();
        if (live.Count != instances || leases.Where(l => except?.Contains(l.Key) != true).Any(l => l.Value is null || !live.Contains(l.Value.Value.Owner)))
        {
            return false;
        }
        if (except is not null)
        {
            return true;
        }
        var counts = live.Select(n => leases.Values.Count(l => l!.Value.Owner == n)).ToArray();
        return counts.All(c => c >= Sessions.Count / instances && c <= (Sessions.Count + instances - 1) / instances);
    }, timeout, $"{instances} live instances, every session leased, balanced");

    /// <summary>Waits until every session (or each of <paramref name="sessions"/>) has a poll record written at or after <paramref name="since"/>.</summary>
    public Task WaitAllPolledSinceAsync(DateTimeOffset since, TimeSpan timeout, IReadOnlyCollection<string>? sessions = null) => UntilAsync(async () =>
    {
        foreach (var s in sessions ?? Sessions)
        {
            var last = await Log.ReadAsync(s, 1);
            if (last.Count == 0 || PollRecord.TryParse(last[0].Body) is not { } record || record.Polled < since)
            {
                return false;
            }
        }
        return true;
    }, timeout, $"every session polled since {since:HH:mm:ss.fff}");

    /// <summary>Reads every session's log and merges it into what earlier snapshots saw (a restart may empty Redis).</summary>
    public async Task SnapshotAsync()
    {
        foreach (var s in Sessions)
        {
            if (!_records.TryGetValue(s, out var list))
            {
                _records[s] = list = [];
                _seen[s] = [];
            }
            foreach (var m in await Log.ReadAsync(s))
            {
                if (PollRecord.TryParse(m.Body) is { } r && _seen[s].Add((r.Token, r.Instance, r.Polled)))
                {
                    list.Add(r);
                }
            }
        }
    }

    /// <summary>Final snapshot, figures, and the must-be-0 assertions. The gap is printed against its bound.</summary>
    public async Task<ChaosFigures> CheckAsync(DateTimeOffset from, TimeSpan? gapBound = null)
    {
        var to = DateTimeOffset.UtcNow;
        await SnapshotAsync();
        var (starts, acquired) = ChaosChecker.ParseOutput(_children.SelectMany(c => c.Lines));
        var catalog = (await Catalog.ListAsync()).Select(s => s.Id).ToArray();
        var figures = ChaosChecker.Check(_records, starts, acquired, Sessions, catalog, from, to, gapBound ?? GapBound);
        Note("figures: " + ChaosChecker.Describe(figures));
        Assert.True(figures.Records > 0, "no poll records at all");
        Assert.True(figures.DuplicateOwnerWindows == 0, ChaosChecker.Describe(figures));
        Assert.True(figures.StaleAppends == 0, ChaosChecker.Describe(figures));
        Assert.True(figures.PollsOutsideLeaseWindow == 0, ChaosChecker.Describe(figures));
        Assert.True(figures.SessionsLost == 0, ChaosChecker.Describe(figures));
        return figures;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _children)
        {
            c.Dispose();
        }
        await Admin.DisposeAsync();
        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }

    /// <summary>Polls a condition every 200 ms until a deadline (Redis reads, so not every few ms).</summary>
    public async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (RedisException)
            {
                // Redis may be restarting under the test: keep waiting.
            }
            if (sw.Elapsed > timeout)
            {
                var tails = string.Join("\n", _children.Select(c => $"--- {c.Name} (exited: {c.Process.HasExited}) ---\n" + string.Join("\n", c.Lines.TakeLast(15).Select(l => l.Text))));
                throw new TimeoutException($"Timed out after {timeout} waiting for: {what}\n{tails}");
            }
            await Task.Delay(200);
        }
    }
}
