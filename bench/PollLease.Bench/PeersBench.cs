using System.Diagnostics;
using System.Globalization;
using System.Text;
using Medallion.Threading.Redis;
using PollLease.Coordination;
using PollLease.Sessions;
using RedLockNet.SERedis;
using RedLockNet.SERedis.Configuration;
using StackExchange.Redis;

namespace PollLease.Bench;

/// <summary>
/// `peers`: one holder of K leases with the same TTL and renew cadence, done three ways: PollLease (one script
/// call per cycle for all K), DistributedLock.Redis (one auto-extended RedisDistributedLock per session) and
/// RedLock.net (one auto-extended lock per session). Redis commands per second (INFO commandstats), client CPU
/// per minute held, time to acquire all K, and time for a second holder to take all K over after the first dies.
/// </summary>
internal static class PeersBench
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(9);
    private static readonly TimeSpan Renew = TimeSpan.FromSeconds(3);

    /// <summary>The largest K RedLock.net is run with (see the row the report prints above it).</summary>
    private const int RedLockMaxK = 100;

    /// <summary>CommandsPerSecond: commands the client sent (round trips); OpsPerSecond: what Redis executed, script-internal calls included.</summary>
    private sealed record Figures(string Name, int K, double CommandsPerSecond, double CpuSecondsPerMinute, double AcquireSeconds, double TakeoverSeconds, string? Error = null)
    {
        public double OpsPerSecond { get; init; }

        /// <summary>Lock keys still in Redis at the end of the window: fewer than K means the library let locks lapse.</summary>
        public int StillHeld { get; init; }
    }

    public static async Task<string> RunAsync(RedisServerProcess redis, bool quick, string resultsDir)
    {
        var sizes = quick ? new[] { 100, 1_000 } : [100, 1_000, 10_000];
        var window = quick ? TimeSpan.FromSeconds(12) : TimeSpan.FromSeconds(30);
        var idle = await IdleCpuSecondsPerMinuteAsync(redis, window).ConfigureAwait(false);
        var rows = new List<Figures>();
        foreach (var k in sizes)
        {
            rows.Add(await TryMeasureAsync("PollLease", k, window, redis, PollLeaseHolderAsync).ConfigureAwait(false));
            rows.Add(await TryMeasureAsync("DistributedLock.Redis 1.1.1", k, window, redis, DistributedLockHolderAsync).ConfigureAwait(false));
            rows.Add(k <= RedLockMaxK
                ? await TryMeasureAsync("RedLock.net 2.3.2", k, window, redis, RedLockHolderAsync).ConfigureAwait(false)
                : new Figures("RedLock.net 2.3.2", k, 0, 0, 0, 0, "not run: at K = 1,000 its blocking extension timers starve the thread pool; earlier runs timed out or hung the whole process"));
        }

        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"### peers: one holder of K leases, TTL {Ttl.TotalSeconds} s, renew every {Renew.TotalSeconds} s (RedLock.net extends at TTL/2, its fixed cadence), {window.TotalSeconds} s held").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Client CPU is this process's CPU time while holding, minus what the same process with the same three connections open and nothing held used over an equal window ({idle:0.000} s per minute, measured first); 0.000 means within that idle noise.").AppendLine();
        md.AppendLine("| K | library | commands sent/s | x PollLease | Redis ops/s (incl. inside scripts) | client CPU s per minute held | x PollLease | still held after the window | acquire all K | takeover of all K after a crash |");
        md.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var group in rows.GroupBy(r => r.K))
        {
            var us = group.First();
            foreach (var r in group)
            {
                if (r.Error is not null)
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {r.K} | {r.Name} | failed: {r.Error} | | | | | | | |");
                    continue;
                }
                var cpu = Math.Max(0, r.CpuSecondsPerMinute - idle);
                var ours = Math.Max(0, us.CpuSecondsPerMinute - idle);
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {r.K} | {r.Name} | {r.CommandsPerSecond:0.00} | {r.CommandsPerSecond / us.CommandsPerSecond:0.0} | {r.OpsPerSecond:0.0} | {cpu:0.000} | {(ours > 0.0005 ? (cpu / ours).ToString("0.0", CultureInfo.InvariantCulture) : "-")} | {r.StillHeld} of {r.K} | {r.AcquireSeconds:0.000} s | {r.TakeoverSeconds:0.00} s |");
            }
        }
        md.AppendLine();
        var chart = Charts.CommandsVsPeers(rows.Where(r => r.Error is null).Select(r => (r.Name, r.K, r.CommandsPerSecond)).ToList(), Path.Combine(resultsDir, "peers-commands.png"));
        md.AppendLine(CultureInfo.InvariantCulture, $"![commands per second vs peers]({Path.GetFileName(chart)})").AppendLine();
        md.AppendLine("Takeover: the first holder's connection is closed without releasing; the second holder (PollLease: a second instance; the lock libraries: a loop trying every not-yet-held lock every 250 ms) owns all K. The floor is the TTL.").AppendLine();
        return md.ToString();
    }

    /// <summary>Acquires K, then returns a "crash" action and a "second holder" task factory.</summary>
    private delegate Task<Holder> HolderFactory(ConnectionMultiplexer first, ConnectionMultiplexer second, string[] keys, string prefix);

    /// <summary>LockKeys: the Redis keys that exist while the K leases are held (RedLock.net's default key format is <c>redlock:{resource}</c>).</summary>
    private sealed record Holder(RedisKey[] LockKeys, Func<Task<double>> CrashAndTakeOver, Func<Task> DisposeAsync);

    private static async Task<Figures> TryMeasureAsync(string name, int k, TimeSpan window, RedisServerProcess redis, HolderFactory factory)
    {
        try
        {
            return await MeasureAsync(name, k, window, redis, factory).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or InvalidOperationException)
        {
            // A library that cannot hold K locks in one process is a result, not a bench crash.
            Console.Error.WriteLine($"bench: {name} with K = {k} failed: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            return new Figures(name, k, 0, 0, 0, 0, $"{e.GetType().Name} ({e.Message.Split(',')[0]})");
        }
    }

    private static async Task<Figures> MeasureAsync(string name, int k, TimeSpan window, RedisServerProcess redis, HolderFactory factory)
    {
        var prefix = $"peer{Guid.NewGuid():N}"[..12];
        var keys = Enumerable.Range(0, k).Select(i => $"session-{i:D6}").ToArray();
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true").ConfigureAwait(false);
        var first = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString).ConfigureAwait(false);
        await using var second = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString).ConfigureAwait(false);

        var acquire = Stopwatch.StartNew();
        var holder = await factory(first, second, keys, prefix).ConfigureAwait(false);
        var acquireSeconds = acquire.Elapsed.TotalSeconds;
        try
        {
            return await HoldAsync(name, k, window, admin, first, holder, acquireSeconds).ConfigureAwait(false);
        }
        finally
        {
            // Also when the library failed mid-measurement: its extension timers must not starve the later runs.
            await holder.DisposeAsync().ConfigureAwait(false);
            await first.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task<Figures> HoldAsync(string name, int k, TimeSpan window, ConnectionMultiplexer admin, ConnectionMultiplexer first, Holder holder, double acquireSeconds)
    {
        var server = admin.GetServer(admin.GetEndPoints()[0]);

        // Steady state: renewals only.
        await Task.Delay(Renew).ConfigureAwait(false);
        await server.ExecuteAsync("CONFIG", "RESETSTAT").ConfigureAwait(false);
        var profile = new StackExchange.Redis.Profiling.ProfilingSession();
        first.RegisterProfiler(() => profile);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        await Task.Delay(window).ConfigureAwait(false);
        var held = watch.Elapsed;
        var cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        var requests = profile.FinishProfiling().Count();
        var operations = await CommandCountAsync(server).ConfigureAwait(false);
        var db = admin.GetDatabase();
        var stillHeld = (await Task.WhenAll(holder.LockKeys.Select(key => db.KeyExistsAsync(key))).ConfigureAwait(false)).Count(x => x);

        var takeover = await holder.CrashAndTakeOver().ConfigureAwait(false);
        return new Figures(name, k, requests / held.TotalSeconds, cpuUsed.TotalSeconds / held.TotalMinutes, acquireSeconds, takeover) { OpsPerSecond = operations / held.TotalSeconds, StillHeld = stillHeld };
    }

    /// <summary>The process's own CPU with the measurement's connections open and nothing held: the floor every library sits on.</summary>
    private static async Task<double> IdleCpuSecondsPerMinuteAsync(RedisServerProcess redis, TimeSpan window)
    {
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true").ConfigureAwait(false);
        await using var first = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString).ConfigureAwait(false);
        await using var second = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        await Task.Delay(window).ConfigureAwait(false);
        return (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds / watch.Elapsed.TotalMinutes;
    }

    private static async Task<long> CommandCountAsync(IServer server)
    {
        var info = await server.InfoAsync("commandstats").ConfigureAwait(false);
        long total = 0;
        foreach (var pair in info.SelectMany(g => g))
        {
            // cmdstat_evalsha: calls=12,usec=...  (CONFIG/INFO of this measurement excluded)
            if (pair.Key.StartsWith("cmdstat_", StringComparison.Ordinal) && pair.Key is not ("cmdstat_info" or "cmdstat_config"))
            {
                var calls = pair.Value.Split(',')[0];
                total += long.Parse(calls["calls=".Length..], CultureInfo.InvariantCulture);
            }
        }
        return total;
    }

    private static PollLeaseOptions Options(string prefix, string id) => new()
    {
        KeyPrefix = prefix,
        InstanceId = id,
        LeaseTtl = Ttl,
        RenewInterval = Renew,
        HeartbeatTtl = Ttl,
        HeartbeatInterval = Renew,
        RetryInterval = TimeSpan.FromSeconds(1),
        SafetyMargin = TimeSpan.FromSeconds(1),
        OperationTimeout = TimeSpan.FromSeconds(3),
    };

    private static async Task<Holder> PollLeaseHolderAsync(ConnectionMultiplexer first, ConnectionMultiplexer second, string[] keys, string prefix)
    {
        var sessions = StaticSessionSource.FromIds(keys);
        // A made-up fleet on a fresh prefix: its first epoch needs no data-loss quarantine (a first start would otherwise
        // wait one lease TTL before acquiring, which is not what this measures).
        await DataLossGuard.EstablishNewFleetAsync(first.GetDatabase(), new RedisKeys(prefix)).ConfigureAwait(false);
        var a = new LeaseManager(first, Options(prefix, "first"), sessions);
        await a.StartAsync().ConfigureAwait(false);
        await WaitAsync(() => a.OwnedSessions().Count == keys.Length).ConfigureAwait(false);
        LeaseManager? b = null;
        return new Holder(
            keys.Select(k => (RedisKey)a.Keys.Lease(k)).ToArray(),
            async () =>
            {
                b = new LeaseManager(second, Options(prefix, "second"), sessions);
                await b.StartAsync().ConfigureAwait(false);
                var watch = Stopwatch.StartNew();
                await first.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
                await WaitAsync(() => b.OwnedSessions().Count == keys.Length).ConfigureAwait(false);
                return watch.Elapsed.TotalSeconds;
            },
            async () =>
            {
                await a.DisposeAsync().ConfigureAwait(false);
                if (b is not null)
                {
                    await b.DisposeAsync().ConfigureAwait(false);
                }
            });
    }

    private static async Task<Holder> DistributedLockHolderAsync(ConnectionMultiplexer first, ConnectionMultiplexer second, string[] keys, string prefix)
    {
        RedisDistributedLock Lock(ConnectionMultiplexer c, string key) =>
            new($"{prefix}:{key}", c.GetDatabase(), o => o.Expiry(Ttl).ExtensionCadence(Renew));
        var handles = new List<RedisDistributedLockHandle>();
        foreach (var chunk in keys.Chunk(100))
        {
            var got = await Task.WhenAll(chunk.Select(k => Lock(first, k).TryAcquireAsync().AsTask())).ConfigureAwait(false);
            handles.AddRange(got.Select(h => h ?? throw new InvalidOperationException("DistributedLock.Redis did not acquire a free lock")));
        }
        var taken = new List<RedisDistributedLockHandle>();
        return new Holder(
            keys.Select(k => (RedisKey)$"{prefix}:{k}").ToArray(),
            async () =>
            {
                var watch = Stopwatch.StartNew();
                await first.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
                var pending = keys.ToList();
                while (pending.Count > 0)
                {
                    var attempts = await Task.WhenAll(pending.Select(async k => (Key: k, Handle: await Lock(second, k).TryAcquireAsync().ConfigureAwait(false)))).ConfigureAwait(false);
                    taken.AddRange(attempts.Where(a => a.Handle is not null).Select(a => a.Handle!));
                    pending = attempts.Where(a => a.Handle is null).Select(a => a.Key).ToList();
                    if (pending.Count > 0)
                    {
                        await Task.Delay(250).ConfigureAwait(false);
                    }
                }
                return watch.Elapsed.TotalSeconds;
            },
            async () =>
            {
                foreach (var h in taken)
                {
                    await h.DisposeAsync().ConfigureAwait(false);
                }
                await DisposeCrashedAsync(handles.Select<RedisDistributedLockHandle, Func<ValueTask>>(h => h.DisposeAsync)).ConfigureAwait(false);
            });
    }

    private static async Task<Holder> RedLockHolderAsync(ConnectionMultiplexer first, ConnectionMultiplexer second, string[] keys, string prefix)
    {
        var firstFactory = RedLockFactory.Create(new List<RedLockMultiplexer> { new(first) });
        var secondFactory = RedLockFactory.Create(new List<RedLockMultiplexer> { new(second) });
        var locks = new List<RedLockNet.IRedLock>();
        try
        {
            foreach (var chunk in keys.Chunk(100))
            {
                var got = await Task.WhenAll(chunk.Select(k => firstFactory.CreateLockAsync($"{prefix}:{k}", Ttl))).ConfigureAwait(false);
                locks.AddRange(got);
                if (got.Any(l => !l.IsAcquired))
                {
                    throw new InvalidOperationException("RedLock.net did not acquire a free lock");
                }
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException or InvalidOperationException)
        {
            // Stop the extension timers of what was acquired before failing, or they starve every later run.
            locks.ForEach(l => l.Dispose());
            firstFactory.Dispose();
            secondFactory.Dispose();
            throw;
        }
        var taken = new List<RedLockNet.IRedLock>();
        return new Holder(
            keys.Select(k => (RedisKey)$"redlock:{prefix}:{k}").ToArray(),
            async () =>
            {
                var watch = Stopwatch.StartNew();
                await first.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
                var pending = keys.ToList();
                while (pending.Count > 0)
                {
                    var attempts = await Task.WhenAll(pending.Select(async k => (Key: k, Lock: await secondFactory.CreateLockAsync($"{prefix}:{k}", Ttl).ConfigureAwait(false)))).ConfigureAwait(false);
                    taken.AddRange(attempts.Where(a => a.Lock.IsAcquired).Select(a => a.Lock));
                    foreach (var failed in attempts.Where(a => !a.Lock.IsAcquired))
                    {
                        failed.Lock.Dispose();
                    }
                    pending = attempts.Where(a => !a.Lock.IsAcquired).Select(a => a.Key).ToList();
                    if (pending.Count > 0)
                    {
                        await Task.Delay(250).ConfigureAwait(false);
                    }
                }
                return watch.Elapsed.TotalSeconds;
            },
            async () =>
            {
                foreach (var l in taken)
                {
                    l.Dispose();
                }
                await DisposeCrashedAsync(locks.Select<RedLockNet.IRedLock, Func<ValueTask>>(l => () => { l.Dispose(); return ValueTask.CompletedTask; })).ConfigureAwait(false);
                firstFactory.Dispose();
                secondFactory.Dispose();
            });
    }

    /// <summary>
    /// Disposes the crashed holder's locks. Its connection was closed on purpose, so the releases cannot reach
    /// Redis (the locks expire anyway); disposing still stops each lock's extension timer.
    /// </summary>
    private static async Task DisposeCrashedAsync(IEnumerable<Func<ValueTask>> disposals)
    {
        var failures = 0;
        foreach (var dispose in disposals)
        {
            try
            {
                await dispose().ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or ObjectDisposedException or InvalidOperationException or AggregateException)
            {
                if (failures++ == 0)
                {
                    Console.Error.WriteLine($"bench: the crashed holder's locks could not be released ({e.GetType().Name}), as expected");
                }
            }
        }
    }

    private static async Task WaitAsync(Func<bool> condition)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(120))
            {
                throw new TimeoutException("timed out after 120 s");
            }
            await Task.Delay(5).ConfigureAwait(false);
        }
    }
}
