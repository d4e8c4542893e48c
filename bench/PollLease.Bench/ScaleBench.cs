using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using PollLease.Coordination;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.Bench;

/// <summary>
/// `scale`: N lease managers in this process, each on its own connection, sharing S sessions on one Redis. Once the
/// fleet has settled (every session owned, every instance at its fair share) it measures a window of steady-state
/// cycles: full cycle latency per instance (planning included, from the <c>polllease.cycle</c> activity), round
/// trips and Redis commands per cycle (INFO commandstats), client CPU per cycle, Redis CPU (INFO cpu) and Redis
/// memory per session (INFO memory).
/// </summary>
internal static class ScaleBench
{
    // Full: the library's default timings (LeaseTtl and HeartbeatTtl 30 s, renew and heartbeat every 10 s).
    // Quick: scaled down to 9 s / 3 s so a short window still holds a few cycles per instance.
    private static readonly TimeSpan FullTtl = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan FullRenew = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan QuickTtl = TimeSpan.FromSeconds(9);
    private static readonly TimeSpan QuickRenew = TimeSpan.FromSeconds(3);
    private static readonly int[] FullNodes = [1, 5, 20, 50];
    private static readonly int[] FullSessions = [100, 1_000, 10_000, 100_000];

    internal sealed record Point(int N, int S)
    {
        public bool Settled { get; init; }

        public double SettleSeconds { get; init; }

        public int Cycles { get; init; }

        public double ExpectedCycles { get; init; }

        public double CycleP50Ms { get; init; }

        public double CycleP99Ms { get; init; }

        public double CycleMaxMs { get; init; }

        public double RoundTripsPerCycle { get; init; }

        public double RoundTripsPerSecond { get; init; }

        public double CommandsPerSecond { get; init; }

        public double CommandsPerCycle { get; init; }

        public double ClientCpuMsPerCycle { get; init; }

        public double RedisCpuPercent { get; init; }

        public double RedisUsecPerCycle { get; init; }

        public double BytesPerSession { get; init; }
    }

    public static async Task<string> RunAsync(RedisServerProcess redis, bool quick, string resultsDir, (int N, int S)[] only)
    {
        // Quick keeps `all --quick` under 5 minutes on 2 cores: the three sizes for one instance, two for a fleet.
        var grid = quick
            ? new[] { (1, 100), (1, 1_000), (1, 10_000), (20, 1_000), (20, 10_000) }
            : (from n in FullNodes from s in FullSessions select (n, s)).ToArray();
        if (only.Length > 0)
        {
            grid = only;
        }
        var window = quick ? TimeSpan.FromSeconds(6) : TimeSpan.FromSeconds(30);
        var (ttl, renew) = quick ? (QuickTtl, QuickRenew) : (FullTtl, FullRenew);
        var points = new List<Point>();
        foreach (var (n, s) in grid)
        {
            var point = await MeasureAsync(redis, n, s, window, ttl, renew).ConfigureAwait(false);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"bench scale: N={n} S={s} settled={point.Settled} in {point.SettleSeconds:0.0} s, cycle p99 {point.CycleP99Ms:0.0} ms"));
            points.Add(point);
        }

        var chart = Charts.CycleLatency(points, Path.Combine(resultsDir, "scale-cycle-latency.png"));
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"### scale: N instances x S sessions on one Redis, LeaseTtl and HeartbeatTtl {ttl.TotalSeconds} s, renew and heartbeat every {renew.TotalSeconds} s, {window.TotalSeconds} s measured after the fleet settled").AppendLine();
        md.AppendLine("Every instance is a LeaseManager in this one process with its own connection, so client CPU is the whole fleet's (2 cores shared with the Redis server). Cycle = the whole lease cycle (plan, build, round trip, apply); round trips and Redis commands from INFO commandstats (commands include those run inside the cycle script); Redis CPU from INFO cpu; memory = INFO used_memory after settling minus before starting, per session.").AppendLine();
        md.AppendLine("| N | S | settled in | cycles (expected) | cycle p50 | cycle p99 | cycle max | round trips / cycle | round trips/s | Redis commands/s | commands / cycle | Redis µs / cycle | client CPU ms / cycle | Redis CPU % of one core | Redis bytes / session |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var p in points)
        {
            var settled = p.Settled ? $"{p.SettleSeconds:0.0} s" : $"not in {p.SettleSeconds:0} s";
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {p.N} | {p.S} | {settled} | {p.Cycles} ({p.ExpectedCycles:0}) | {p.CycleP50Ms:0.0} ms | {p.CycleP99Ms:0.0} ms | {p.CycleMaxMs:0.0} ms | {p.RoundTripsPerCycle:0.00} | {p.RoundTripsPerSecond:0.00} | {p.CommandsPerSecond:0} | {p.CommandsPerCycle:0} | {p.RedisUsecPerCycle:0} | {p.ClientCpuMsPerCycle:0.00} | {p.RedisCpuPercent:0.0} | {p.BytesPerSession:0} |");
        }
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"![cycle latency vs sessions]({Path.GetFileName(chart)})").AppendLine();
        return md.ToString();
    }

    internal static PollLeaseOptions Options(string prefix, string id, TimeSpan ttl, TimeSpan renew) => new()
    {
        KeyPrefix = prefix,
        InstanceId = id,
        LeaseTtl = ttl,
        RenewInterval = renew,
        HeartbeatTtl = ttl,
        HeartbeatInterval = renew,
        RetryInterval = TimeSpan.FromSeconds(1),
        SafetyMargin = TimeSpan.FromSeconds(1),
        OperationTimeout = TimeSpan.FromSeconds(5),
    };

    private static async Task<Point> MeasureAsync(RedisServerProcess redis, int n, int s, TimeSpan window, TimeSpan ttl, TimeSpan renew)
    {
        var prefix = $"scale{Guid.NewGuid():N}"[..12];
        var sessions = StaticSessionSource.FromIds(BalanceBench.SessionIds(s));
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true").ConfigureAwait(false);
        var server = admin.GetServer(admin.GetEndPoints()[0]);
        if (redis.OwnsServer)
        {
            await server.FlushAllDatabasesAsync().ConfigureAwait(false);
        }
        var memoryBefore = await InfoLongAsync(server, "memory", "used_memory").ConfigureAwait(false);
        // A made-up fleet on a fresh prefix: its first epoch needs no data-loss quarantine (a first start would otherwise
        // wait one lease TTL before acquiring, which is not what this measures).
        await DataLossGuard.EstablishNewFleetAsync(admin.GetDatabase(), new RedisKeys(prefix)).ConfigureAwait(false);

        var connections = new List<ConnectionMultiplexer>();
        var managers = new List<LeaseManager>();
        using var cycles = new CycleRecorder();
        try
        {
            for (var i = 0; i < n; i++)
            {
                var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",syncTimeout=10000,asyncTimeout=10000").ConfigureAwait(false);
                connections.Add(connection);
                managers.Add(new LeaseManager(connection, Options(prefix, $"scale-{i:D2}", ttl, renew), sessions));
            }
            var settle = Stopwatch.StartNew();
            await Task.WhenAll(managers.Select(m => m.StartAsync())).ConfigureAwait(false);
            var fair = (s + n - 1) / n;
            var settleLimit = TimeSpan.FromSeconds(Math.Max(60, (double)s * n / 12_000));
            var settled = await WaitAsync(
                () => managers.All(m => m.LiveNodes.Count == n) && managers.Sum(m => m.OwnedSessions().Count) == s && managers.All(m => m.OwnedSessions().Count <= fair),
                settleLimit).ConfigureAwait(false);
            var settleSeconds = settle.Elapsed.TotalSeconds;
            var memoryAfter = await InfoLongAsync(server, "memory", "used_memory").ConfigureAwait(false);

            // Let the cycles that settled the fleet pass, then measure steady state only.
            await Task.Delay(renew).ConfigureAwait(false);
            await server.ExecuteAsync("CONFIG", "RESETSTAT").ConfigureAwait(false);
            var redisCpu = await RedisCpuAsync(server).ConfigureAwait(false);
            var clientCpu = Process.GetCurrentProcess().TotalProcessorTime;
            cycles.Start();
            var watch = Stopwatch.StartNew();
            await Task.Delay(window).ConfigureAwait(false);
            var samples = cycles.Stop();
            var elapsed = watch.Elapsed;
            var clientCpuUsed = Process.GetCurrentProcess().TotalProcessorTime - clientCpu;
            var redisCpuUsed = await RedisCpuAsync(server).ConfigureAwait(false) - redisCpu;
            var stats = await CommandStatsAsync(server).ConfigureAwait(false);

            var roundTrips = stats.Where(x => x.Key is "evalsha" or "eval").Sum(x => x.Value.Calls);
            var commands = stats.Sum(x => x.Value.Calls);
            var scriptUsec = stats.Where(x => x.Key is "evalsha" or "eval").Sum(x => x.Value.Usec);
            var count = Math.Max(samples.Count, 1);
            var sorted = samples.Order().ToArray();
            return new Point(n, s)
            {
                Settled = settled,
                SettleSeconds = settleSeconds,
                Cycles = samples.Count,
                ExpectedCycles = n * elapsed.TotalSeconds / renew.TotalSeconds,
                CycleP50Ms = Percentile(sorted, 0.50),
                CycleP99Ms = Percentile(sorted, 0.99),
                CycleMaxMs = sorted.Length == 0 ? 0 : sorted[^1],
                RoundTripsPerCycle = (double)roundTrips / count,
                RoundTripsPerSecond = roundTrips / elapsed.TotalSeconds,
                CommandsPerSecond = commands / elapsed.TotalSeconds,
                CommandsPerCycle = (double)commands / count,
                RedisUsecPerCycle = (double)scriptUsec / Math.Max(roundTrips, 1),
                ClientCpuMsPerCycle = clientCpuUsed.TotalMilliseconds / count,
                RedisCpuPercent = 100 * redisCpuUsed / elapsed.TotalSeconds,
                BytesPerSession = (double)(memoryAfter - memoryBefore) / s,
            };
        }
        finally
        {
            await Task.WhenAll(managers.Select(m => m.DisposeAsync().AsTask())).ConfigureAwait(false);
            foreach (var c in connections)
            {
                await c.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    internal static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static async Task<bool> WaitAsync(Func<bool> condition, TimeSpan limit)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > limit)
            {
                return false;
            }
            await Task.Delay(50).ConfigureAwait(false);
        }
        return true;
    }

    private static async Task<long> InfoLongAsync(IServer server, string section, string field)
    {
        var info = await server.InfoAsync(section).ConfigureAwait(false);
        return long.Parse(info.SelectMany(g => g).First(p => p.Key == field).Value, CultureInfo.InvariantCulture);
    }

    /// <summary>Seconds of CPU the Redis server used (user + system, main thread and others).</summary>
    private static async Task<double> RedisCpuAsync(IServer server)
    {
        var info = (await server.InfoAsync("cpu").ConfigureAwait(false)).SelectMany(g => g).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        return double.Parse(info["used_cpu_user"], CultureInfo.InvariantCulture) + double.Parse(info["used_cpu_sys"], CultureInfo.InvariantCulture);
    }

    /// <summary>INFO commandstats as command -> (calls, usec); the measurement's own INFO and CONFIG left out.</summary>
    internal static async Task<Dictionary<string, (long Calls, long Usec)>> CommandStatsAsync(IServer server)
    {
        var info = await server.InfoAsync("commandstats").ConfigureAwait(false);
        var result = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        foreach (var pair in info.SelectMany(g => g))
        {
            // cmdstat_evalsha: calls=12,usec=340,usec_per_call=28.33,...
            if (!pair.Key.StartsWith("cmdstat_", StringComparison.Ordinal) || pair.Key is "cmdstat_info" or "cmdstat_config")
            {
                continue;
            }
            var fields = pair.Value.Split(',').Select(f => f.Split('=')).ToDictionary(f => f[0], f => f[1], StringComparer.Ordinal);
            result[pair.Key["cmdstat_".Length..]] = (long.Parse(fields["calls"], CultureInfo.InvariantCulture), long.Parse(fields["usec"], CultureInfo.InvariantCulture));
        }
        return result;
    }

    /// <summary>Durations of every <c>polllease.cycle</c> activity that ends while recording, in ms.</summary>
    internal sealed class CycleRecorder : IDisposable
    {
        private readonly ActivityListener _listener;
        private ConcurrentBag<double>? _samples;

        public CycleRecorder()
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == "PollLease",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
                ActivityStopped = activity =>
                {
                    if (activity.OperationName == "polllease.cycle")
                    {
                        Volatile.Read(ref _samples)?.Add(activity.Duration.TotalMilliseconds);
                    }
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public void Start() => Volatile.Write(ref _samples, []);

        public List<double> Stop() => [.. Interlocked.Exchange(ref _samples, null) ?? []];

        public void Dispose() => _listener.Dispose();
    }
}
