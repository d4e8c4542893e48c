using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using PollLease.Assignment;
using PollLease.Coordination;
using PollLease.Election;
using PollLease.Fleet;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.Bench;

/// <summary>
/// `failover`: 5 instances and 200 sessions on real Redis with the default timings scaled down to a 3 s TTL, and the
/// fleet janitor publishing the assignment as hosting runs it; the time from an instance's crash (connection
/// dropped, no release) or graceful stop to every one of its sessions being owned again, and how many times each
/// orphaned session moved until the fleet settled without the instance (1 is the minimum: straight to its new owner).
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
        var crash = new List<Trial>();
        var graceful = new List<Trial>();
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
        md.AppendLine(CultureInfo.InvariantCulture, $"| crash (connection dropped, no release) | {P(crash, 0.5):0.000} s | {P(crash, 0.99):0.000} s | {crash.Max(c => c.Seconds):0.000} s | p99 <= LeaseTtl + 1 s = 4 s |");
        md.AppendLine(CultureInfo.InvariantCulture, $"| graceful stop (release + events) | {P(graceful, 0.5):0.000} s | {P(graceful, 0.99):0.000} s | {graceful.Max(c => c.Seconds):0.000} s | p99 <= 1 s |");
        md.AppendLine();
        md.AppendLine("Moves until the fleet settled without the instance (its registry entry gone, the janitor's new assignment published and held), all trials:").AppendLine();
        md.AppendLine("| event | moves per orphaned session | other sessions moved | target |");
        md.AppendLine("|---|---:|---:|---|");
        foreach (var (name, list) in new[] { ("crash", crash), ("graceful stop", graceful) })
        {
            var perOrphan = (double)list.Sum(c => c.OrphanMoves) / list.Sum(c => c.Orphans);
            md.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {perOrphan:0.00} | {list.Sum(c => c.OtherMoves)} | 1.00 and 0 |");
        }
        md.AppendLine();
        return md.ToString();
    }

    private sealed record Trial(double Seconds, int Orphans, int OrphanMoves, int OtherMoves);

    private static async Task<Trial> TrialAsync(string connectionString, bool crashIt, int trial)
    {
        var prefix = $"bench{Guid.NewGuid():N}"[..16];
        var sessions = StaticSessionSource.FromIds(Enumerable.Range(0, SessionCount).Select(i => $"session-{i:D6}").ToArray());
        var members = new List<(LeaseManager Leases, ConnectionMultiplexer Redis)>();
        var acquired = new ConcurrentQueue<(long At, string Instance, string Session)>();
        var janitorConnection = await ConnectionMultiplexer.ConnectAsync(connectionString).ConfigureAwait(false);
        var janitorOptions = Options(prefix);
        var janitor = new FleetJanitor(janitorConnection, prefix, $"janitor-{trial}", janitorOptions.HeartbeatTtl, new JanitorOptions
        {
            Interval = TimeSpan.FromMilliseconds(500),
            CleanOrphans = false,
        });
        janitor.PublishAssignments(sessions, 0);
        var store = new AssignmentStore(janitorConnection, new RedisKeys(prefix));
        try
        {
            // A made-up fleet on a fresh prefix: its first epoch needs no data-loss quarantine (a first start would otherwise
            // wait one lease TTL before acquiring, which is not what this measures).
            await DataLossGuard.EstablishNewFleetAsync(janitorConnection.GetDatabase(), new RedisKeys(prefix)).ConfigureAwait(false);
            await janitor.StartAsync().ConfigureAwait(false);
            for (var i = 0; i < Instances; i++)
            {
                var options = Options(prefix);
                options.InstanceId = $"bench-{trial}-{i}";
                var connection = await ConnectionMultiplexer.ConnectAsync(connectionString).ConfigureAwait(false);
                var leases = new LeaseManager(connection, options, sessions);
                leases.LeaseChanged += (_, e) =>
                {
                    if (e.Kind == LeaseEventKind.Acquired)
                    {
                        acquired.Enqueue((Stopwatch.GetTimestamp(), e.InstanceId, e.SessionId));
                    }
                };
                members.Add((leases, connection));
                await leases.StartAsync().ConfigureAwait(false);
            }
            await WaitAsync(() => members.Sum(m => m.Leases.OwnedSessions().Count(l => l.State == LeaseState.Owned)) == SessionCount
                && members.All(m => m.Leases.OwnedSessions().Count >= SessionCount / Instances), TimeSpan.FromSeconds(30), "the fleet to settle").ConfigureAwait(false);

            await SettledAsync(store, members, "the fleet to follow the published assignment").ConfigureAwait(false);
            var victim = members[trial % Instances];
            var orphaned = victim.Leases.OwnedSessions().Select(l => l.SessionId).ToList();
            var survivors = members.Where(m => m.Leases != victim.Leases).ToList();
            var stopped = Stopwatch.GetTimestamp();
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
            var seconds = watch.Elapsed.TotalSeconds;
            await SettledAsync(store, survivors, "the survivors to settle on the assignment without the stopped instance").ConfigureAwait(false);
            var moves = acquired.Where(a => a.At >= stopped && a.Instance != victim.Leases.InstanceId).ToList();
            var orphanSet = orphaned.ToHashSet(StringComparer.Ordinal);
            return new Trial(seconds, orphaned.Count, moves.Count(m => orphanSet.Contains(m.Session)), moves.Count(m => !orphanSet.Contains(m.Session)));
        }
        finally
        {
            await janitor.DisposeAsync().ConfigureAwait(false);
            await janitorConnection.DisposeAsync().ConfigureAwait(false);
            foreach (var (leases, connection) in members)
            {
                await leases.DisposeAsync().ConfigureAwait(false);
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The janitor published an assignment of exactly these instances and they hold exactly it.</summary>
    private static Task SettledAsync(AssignmentStore store, List<(LeaseManager Leases, ConnectionMultiplexer Redis)> members, string what)
    {
        var ids = members.Select(m => m.Leases.InstanceId).ToHashSet(StringComparer.Ordinal);
        var settled = false;
        return WaitAsync(() =>
        {
            if (settled)
            {
                return true;
            }
            var (_, published, _) = store.ReadAsync(CancellationToken.None).GetAwaiter().GetResult();
            var owners = members.SelectMany(m => m.Leases.OwnedSessions().Where(l => l.State == LeaseState.Owned).Select(l => (l.SessionId, m.Leases.InstanceId))).ToList();
            settled = published is not null && published.Owners.Values.ToHashSet(StringComparer.Ordinal).SetEquals(ids)
                && owners.Count == published.Owners.Count && owners.All(o => published.Owners.GetValueOrDefault(o.SessionId) == o.InstanceId);
            return settled;
        }, TimeSpan.FromSeconds(60), what);
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

    private static double P(List<Trial> trials, double q)
    {
        var sorted = trials.Select(t => t.Seconds).Order().ToList();
        var index = (int)Math.Ceiling(q * sorted.Count) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Count - 1)];
    }
}
