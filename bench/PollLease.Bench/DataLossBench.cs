using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using PollLease.Coordination;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.Bench;

/// <summary>
/// `dataloss`: what the data-loss guard costs. Its part of every cycle (INFO server and replication inside the script,
/// one GET), measured in Redis (usec per call from INFO commandstats) and at the client; the unavailability window
/// after FLUSHALL and after a failover to a replica (time until every session is owned again); and, for comparison,
/// what waiting for a replica's acknowledgement (WAIT pipelined after each cycle) would cost instead, with the
/// replica up and with it stalled.
/// </summary>
internal static class DataLossBench
{
    private const int Instances = 3;
    private const int SessionCount = 200;

    /// <summary>The guard alone, as the cycle runs it.</summary>
    private const string GuardOnly = LuaHelpers.Prelude + DataLossGuard.Lua + """
        local now = server_ms()
        local epoch, quarantine = epoch_guard(KEYS[1], ARGV[1], 'bench', now, 3000)
        return quarantine
        """;

    public static async Task<string> RunAsync(bool quick)
    {
        var calls = quick ? 2000 : 10000;
        var trials = quick ? 3 : 10;
        var md = new StringBuilder();
        using var master = await RedisChildProcess.StartAsync([]);
        using var replica = await RedisChildProcess.StartAsync(["--replicaof", "127.0.0.1", master.Port.ToString(CultureInfo.InvariantCulture)]);
        md.AppendLine(CultureInfo.InvariantCulture, $"Redis: {master.Version}, a master and one replica on loopback.").AppendLine();
        await using (var redis = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{master.Port},allowAdmin=true"))
        {
            await WaitInSyncAsync(redis, replica.Port).ConfigureAwait(false);
            md.Append(await CostAsync(redis, calls).ConfigureAwait(false));
            md.Append(await WaitOptionAsync(redis, replica, calls / 4).ConfigureAwait(false));
            md.Append(await FlushWindowAsync(redis, master, trials).ConfigureAwait(false));
        }
        md.Append(await FailoverWindowAsync(master, replica).ConfigureAwait(false));
        return md.ToString();
    }

    /// <summary>Per-call cost of an empty script, the guard alone and a whole steady-state cycle holding 1,000 leases.</summary>
    private static async Task<string> CostAsync(ConnectionMultiplexer redis, int calls)
    {
        var db = redis.GetDatabase();
        var server = redis.GetServers()[0];
        var keys = new RedisKeys("benchcost");
        await DataLossGuard.EstablishNewFleetAsync(db, keys).ConfigureAwait(false);
        var store = new LeaseStore(redis, keys, "bench-node", FailoverBench.Options("benchcost"));
        await store.RunAsync(new CycleRequest(HeartbeatMode.Register, [], [.. Enumerable.Range(0, 1000).Select(i => $"s{i:D4}")], [])).ConfigureAwait(false);

        var empty = (byte[])(await server.ScriptLoadAsync("return 1").ConfigureAwait(false))!;
        var guard = (byte[])(await server.ScriptLoadAsync(GuardOnly).ConfigureAwait(false))!;
        var rows = new List<(string Name, double ServerUs, double P50, double P99)>();
        rows.Add(await MeasureAsync(server, "empty script (`return 1`)", calls, () => db.ScriptEvaluateAsync(empty)).ConfigureAwait(false));
        rows.Add(await MeasureAsync(server, "the guard alone (INFO server, INFO replication, GET epoch)", calls,
            () => db.ScriptEvaluateAsync(guard, [keys.Epoch], [keys.Root + ":events"])).ConfigureAwait(false));
        rows.Add(await MeasureAsync(server, "whole cycle, heartbeat only, 1,000 leases held (guard included)", calls,
            () => store.RunAsync(new CycleRequest(HeartbeatMode.Beat, [], [], []))).ConfigureAwait(false));

        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"### The guard's cost per cycle ({calls} sequential calls each)").AppendLine();
        md.AppendLine("| call | Redis usec per call | client round trip p50 | p99 |");
        md.AppendLine("|---|---:|---:|---:|");
        foreach (var (name, us, p50, p99) in rows)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {us:0.0} | {p50:0.000} ms | {p99:0.000} ms |");
        }
        md.AppendLine().AppendLine(CultureInfo.InvariantCulture,
            $"The guard adds about {rows[1].ServerUs - rows[0].ServerUs:0.0} usec of Redis time per cycle ({(rows[1].ServerUs - rows[0].ServerUs) / rows[2].ServerUs:P0} of a steady-state cycle), and no round trip.").AppendLine();
        return md.ToString();
    }

    private static async Task<(string, double, double, double)> MeasureAsync(IServer server, string name, int calls, Func<Task> call)
    {
        await server.ExecuteAsync("CONFIG", "RESETSTAT").ConfigureAwait(false);
        var latencies = new double[calls];
        for (var i = 0; i < calls; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await call().ConfigureAwait(false);
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        var stats = (string)(await server.ExecuteAsync("INFO", "commandstats").ConfigureAwait(false))!;
        var line = stats.Split('\n').First(l => l.StartsWith("cmdstat_evalsha:", StringComparison.Ordinal));
        var us = double.Parse(line.Split(',').First(p => p.StartsWith("usec_per_call=", StringComparison.Ordinal))["usec_per_call=".Length..], CultureInfo.InvariantCulture);
        Array.Sort(latencies);
        return (name, us, latencies[calls / 2], latencies[(int)(calls * 0.99)]);
    }

    /// <summary>The alternative: WAIT 1 after every cycle, pipelined in the same round trip.</summary>
    private static async Task<string> WaitOptionAsync(ConnectionMultiplexer redis, RedisChildProcess replica, int calls)
    {
        var db = redis.GetDatabase();
        var keys = new RedisKeys("benchwait");
        await DataLossGuard.EstablishNewFleetAsync(db, keys).ConfigureAwait(false);
        var store = new LeaseStore(redis, keys, "bench-wait", FailoverBench.Options("benchwait"));
        await store.RunAsync(new CycleRequest(HeartbeatMode.Register, [], [], [])).ConfigureAwait(false);
        const int WaitTimeoutMs = 100;

        async Task<(double P50, double P99, double Acked)> RunAsync(bool wait, int n)
        {
            var latencies = new double[n];
            var acked = 0;
            for (var i = 0; i < n; i++)
            {
                var start = Stopwatch.GetTimestamp();
                var cycle = store.RunAsync(new CycleRequest(HeartbeatMode.Beat, [], [], []));
                if (wait)
                {
                    // Sent right behind the script on the same connection: one round trip, answered once a replica has it.
                    var replicas = db.ExecuteAsync("WAIT", 1, WaitTimeoutMs);
                    await Task.WhenAll(cycle, replicas).ConfigureAwait(false);
                    acked += (long)await replicas.ConfigureAwait(false) >= 1 ? 1 : 0;
                }
                else
                {
                    await cycle.ConfigureAwait(false);
                    acked++;
                }
                latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            Array.Sort(latencies);
            return (latencies[n / 2], latencies[(int)(n * 0.99)], (double)acked / n);
        }

        var plain = await RunAsync(false, calls).ConfigureAwait(false);
        var waited = await RunAsync(true, calls).ConfigureAwait(false);
        replica.Suspend();
        (double P50, double P99, double Acked) stalled;
        try
        {
            stalled = await RunAsync(true, Math.Min(calls, 50)).ConfigureAwait(false);
        }
        finally
        {
            replica.Resume();
        }
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"### The alternative: WAIT 1 {WaitTimeoutMs} pipelined after each cycle").AppendLine();
        md.AppendLine("| cycle | p50 | p99 | cycles a replica acknowledged |");
        md.AppendLine("|---|---:|---:|---:|");
        md.AppendLine(CultureInfo.InvariantCulture, $"| cycle alone | {plain.P50:0.000} ms | {plain.P99:0.000} ms | (not asked) |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| cycle + WAIT, replica up | {waited.P50:0.000} ms | {waited.P99:0.000} ms | {waited.Acked:P0} |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| cycle + WAIT, replica stalled | {stalled.P50:0.000} ms | {stalled.P99:0.000} ms | {stalled.Acked:P0} |");
        md.AppendLine();
        return md.ToString();
    }

    /// <summary>FLUSHALL under a running fleet: until every session is owned again (the quarantine plus the next cycle).</summary>
    private static async Task<string> FlushWindowAsync(ConnectionMultiplexer admin, RedisChildProcess master, int trials)
    {
        var windows = new List<double>();
        for (var t = 0; t < trials; t++)
        {
            await using var fleet = await Fleet.StartAsync($"127.0.0.1:{master.Port}", $"benchflush{t}").ConfigureAwait(false);
            var before = fleet.Tokens();
            var start = Stopwatch.GetTimestamp();
            await admin.GetServers()[0].FlushAllDatabasesAsync().ConfigureAwait(false);
            windows.Add(await fleet.UntilAllOwnedAsync(start, before).ConfigureAwait(false));
        }
        windows.Sort();
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"### Unavailability after a loss: {Instances} instances, {SessionCount} sessions, LeaseTtl 3 s (cycle every 1 s)").AppendLine();
        md.AppendLine("Time from the loss until every session is owned again (nothing is acquired during the quarantine of one LeaseTtl).").AppendLine();
        md.AppendLine("| loss | trials | p50 | max |");
        md.AppendLine("|---|---:|---:|---:|");
        md.AppendLine(CultureInfo.InvariantCulture, $"| FLUSHALL | {trials} | {windows[windows.Count / 2]:0.000} s | {windows[^1]:0.000} s |");
        return md.ToString();
    }

    /// <summary>Kill the master, promote the replica (REPLICAOF NO ONE): until every session is owned again, counted from the promotion.</summary>
    private static async Task<string> FailoverWindowAsync(RedisChildProcess master, RedisChildProcess replica)
    {
        await using var fleet = await Fleet.StartAsync($"127.0.0.1:{master.Port},127.0.0.1:{replica.Port},configCheckSeconds=1", "benchfailover").ConfigureAwait(false);
        var before = fleet.Tokens();
        await using (var r = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{replica.Port},allowAdmin=true"))
        {
            await WaitInSyncAsync(r, replica.Port).ConfigureAwait(false);
            master.Dispose();
            await r.GetServers()[0].ExecuteAsync("REPLICAOF", "NO", "ONE").ConfigureAwait(false);
        }
        var window = await fleet.UntilAllOwnedAsync(Stopwatch.GetTimestamp(), before).ConfigureAwait(false);
        return string.Create(CultureInfo.InvariantCulture, $"| master killed, replica promoted | 1 | {window:0.000} s (from the promotion) | |\n\n");
    }

    private static async Task WaitInSyncAsync(ConnectionMultiplexer redis, int replicaPort)
    {
        await using var r = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{replicaPort},allowAdmin=true").ConfigureAwait(false);
        var deadline = Stopwatch.StartNew();
        while (!((string)(await r.GetServers()[0].ExecuteAsync("INFO", "replication").ConfigureAwait(false))!).Contains("master_link_status:up", StringComparison.Ordinal))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException("the replica did not sync within 30 s");
            }
            await Task.Delay(50).ConfigureAwait(false);
        }
        GC.KeepAlive(redis);
    }

    /// <summary>A few lease managers on one connection string, each with its own connection.</summary>
    private sealed class Fleet : IAsyncDisposable
    {
        private readonly List<(LeaseManager Leases, ConnectionMultiplexer Redis)> _members = [];
        private readonly string[] _sessions = Enumerable.Range(0, SessionCount).Select(i => $"session-{i:D6}").ToArray();

        public static async Task<Fleet> StartAsync(string connectionString, string prefix)
        {
            var fleet = new Fleet();
            for (var i = 0; i < Instances; i++)
            {
                var redis = await ConnectionMultiplexer.ConnectAsync(connectionString + ",abortConnect=false").ConfigureAwait(false);
                if (i == 0)
                {
                    await DataLossGuard.EstablishNewFleetAsync(redis.GetDatabase(), new RedisKeys(prefix)).ConfigureAwait(false);
                }
                var options = FailoverBench.Options(prefix);
                options.InstanceId = $"{prefix}-{i}";
                var leases = new LeaseManager(redis, options, StaticSessionSource.FromIds(fleet._sessions));
                fleet._members.Add((leases, redis));
                await leases.StartAsync().ConfigureAwait(false);
            }
            await fleet.UntilAllOwnedAsync(Stopwatch.GetTimestamp(), new Dictionary<string, long>()).ConfigureAwait(false);
            return fleet;
        }

        /// <summary>Each session's token as its owner sees it now.</summary>
        public Dictionary<string, long> Tokens() =>
            _members.SelectMany(m => m.Leases.OwnedSessions()).ToDictionary(l => l.SessionId, l => l.Token, StringComparer.Ordinal);

        /// <summary>
        /// Seconds from <paramref name="start"/> until every session is owned by exactly one member under a token other
        /// than in <paramref name="before"/> (right after a loss, old owners still count their old leases).
        /// </summary>
        public async Task<double> UntilAllOwnedAsync(long start, IReadOnlyDictionary<string, long> before)
        {
            while (!_sessions.All(s => _members.Count(m => m.Leases.TryGetLease(s, out var l) && l.State == LeaseState.Owned && l.Token != before.GetValueOrDefault(s)) == 1
                && _members.Count(m => m.Leases.IsOwned(s)) == 1))
            {
                if (Stopwatch.GetElapsedTime(start) > TimeSpan.FromSeconds(60))
                {
                    throw new TimeoutException("sessions not owned again within 60 s");
                }
                await Task.Delay(10).ConfigureAwait(false);
            }
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var (leases, redis) in _members)
            {
                await leases.DisposeAsync().ConfigureAwait(false);
                await redis.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>A redis-server child on a free loopback port.</summary>
    private sealed class RedisChildProcess : IDisposable
    {
        private readonly Process _process;
        private readonly string _directory;
        private bool _disposed;

        private RedisChildProcess(Process process, string directory, int port, string version)
        {
            _process = process;
            _directory = directory;
            Port = port;
            Version = version;
        }

        public int Port { get; }

        public string Version { get; }

        public static async Task<RedisChildProcess> StartAsync(string[] extra)
        {
            int port;
            using (var probe = new TcpListener(IPAddress.Loopback, 0))
            {
                probe.Start();
                port = ((IPEndPoint)probe.LocalEndpoint).Port;
            }
            // A directory of its own: a replica's full sync writes an RDB file even with --save '', and it must not land in
            // the repository.
            var directory = Directory.CreateTempSubdirectory("polllease-bench-").FullName;
            var info = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = directory };
            foreach (var a in (string[])["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory, .. extra])
            {
                info.ArgumentList.Add(a);
            }
            var process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start");
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    await using var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{port},abortConnect=true,connectTimeout=500,allowAdmin=true").ConfigureAwait(false);
                    return new RedisChildProcess(process, directory, port, (await mux.GetServers()[0].InfoAsync("server").ConfigureAwait(false)).SelectMany(g => g).First(p => p.Key == "redis_version").Value);
                }
                catch (RedisConnectionException) when (deadline.Elapsed < TimeSpan.FromSeconds(10))
                {
                    await Task.Delay(50).ConfigureAwait(false);
                }
                catch
                {
                    process.Kill();
                    process.Dispose();
                    throw;
                }
            }
        }

        public void Suspend() => Signal("-STOP");

        public void Resume() => Signal("-CONT");

        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit();
            }
            _process.Dispose();
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
                // A file the dying server still held: the temp directory is cleaned up by the OS later.
            }
        }

        private void Signal(string signal)
        {
            using var kill = Process.Start("kill", [signal, _process.Id.ToString(CultureInfo.InvariantCulture)])!;
            kill.WaitForExit();
        }
    }
}
