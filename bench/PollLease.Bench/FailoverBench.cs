using System.Diagnostics;
using System.Globalization;
using System.Text;
using PollLease.Coordination;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.Bench;

/// <summary>
/// `failover`: 5 instances and 200 sessions on real Redis with the default timings scaled down to a 3 s TTL; the
/// time from an instance's crash (connection dropped, no release) or graceful stop to every one of its sessions
/// being owned again.
/// </summary>
internal static class FailoverBench
{
    private const int Instances = 5;
    private const int SessionCount = 200;

    public static PollLeaseOptions Options(string prefix) => new()
    {
        KeyPrefix = prefix,
        LeaseTtl = TimeSpan.FromSeconds(3),
        RenewInterval = TimeSpan.FromSeconds(1),
        HeartbeatTtl = TimeSpan.FromSeconds(3),
        HeartbeatInterval = TimeSpan.FromSeconds(1),
        RetryInterval = TimeSpan.FromMilliseconds(200),
        SafetyMargin = TimeSpan.FromMilliseconds(200),
        OperationTimeout = TimeSpan.FromSeconds(1),
        ShutdownTimeout = TimeSpan.FromSeconds(2),
    };

    public static async Task<string> RunAsync(RedisServerProcess redis, bool quick)
    {
        var trials = quick ? 5 : 20;
        var crash = new List<double>();
        var graceful = new List<double>();
        for (var t = 0; t < trials; t++)
        {
            crash.Add(await TrialAsync(redis.ConnectionString, crashIt: true, t).ConfigureAwait(false));
            graceful.Add(await TrialAsync(redis.ConnectionString, crashIt: false, t).ConfigureAwait(false));
        }
        var md = new StringBuilder();
        md.AppendLine("### failover: 5 instances, 200 sessions, LeaseTtl 3 s (renew and heartbeat every 1 s)").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Time until every session of the stopped instance is owned again, {trials} trials each.").AppendLine();
        md.AppendLine("| event | p50 | p99 | max | target |");
        md.AppendLine("|---|---:|---:|---:|---|");
        md.AppendLine(CultureInfo.InvariantCulture, $"| crash (connection dropped, no release) | {P(crash, 0.5):0.000} s | {P(crash, 0.99):0.000} s | {crash.Max():0.000} s | p99 <= LeaseTtl + 1 s = 4 s |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| graceful stop (release + events) | {P(graceful, 0.5):0.000} s | {P(graceful, 0.99):0.000} s | {graceful.Max():0.000} s | p99 <= 1 s |");
        md.AppendLine();
        return md.ToString();
    }

    private static async Task<double> TrialAsync(string connectionString, bool crashIt, int trial)
    {
        var prefix = $"bench{Guid.NewGuid():N}"[..16];
        var sessions = new StaticSessionDirectory(Enumerable.Range(0, SessionCount).Select(i => $"session-{i:D6}").ToArray());
        var members = new List<(LeaseManager Leases, ConnectionMultiplexer Redis)>();
        try
        {
            for (var i = 0; i < Instances; i++)
            {
                var options = Options(prefix);
                options.InstanceId = $"bench-{trial}-{i}";
                var connection = await ConnectionMultiplexer.ConnectAsync(connectionString).ConfigureAwait(false);
                var leases = new LeaseManager(connection, options, sessions);
                members.Add((leases, connection));
                await leases.StartAsync().ConfigureAwait(false);
            }
            await WaitAsync(() => members.Sum(m => m.Leases.OwnedSessions().Count(l => l.State == LeaseState.Owned)) == SessionCount
                && members.All(m => m.Leases.OwnedSessions().Count >= SessionCount / Instances), TimeSpan.FromSeconds(30), "the fleet to settle").ConfigureAwait(false);

            var victim = members[trial % Instances];
            var orphaned = victim.Leases.OwnedSessions().Select(l => l.SessionId).ToList();
            var survivors = members.Where(m => m.Leases != victim.Leases).ToList();
            var watch = Stopwatch.StartNew();
            if (crashIt)
            {
                await victim.Redis.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
            }
            else
            {
                await victim.Leases.StopAsync().ConfigureAwait(false);
            }
            await WaitAsync(() => orphaned.All(s => survivors.Any(m => m.Leases.IsOwned(s))), TimeSpan.FromSeconds(30), "the survivors to take over").ConfigureAwait(false);
            return watch.Elapsed.TotalSeconds;
        }
        finally
        {
            foreach (var (leases, connection) in members)
            {
                await leases.DisposeAsync().ConfigureAwait(false);
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task WaitAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds} s waiting for {what}");
            }
            await Task.Delay(2).ConfigureAwait(false);
        }
    }

    private static double P(List<double> values, double q)
    {
        var sorted = values.Order().ToList();
        var index = (int)Math.Ceiling(q * sorted.Count) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Count - 1)];
    }
}
