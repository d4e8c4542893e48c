using System.Diagnostics;
using System.Globalization;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.ChaosTests.Harness;

/// <summary>
/// A master and a replica (<c>--replicaof</c>), both redis-server children on free loopback ports. The fleet is
/// given both endpoints, the way an application is given a primary and a replica it may be failed over to.
/// </summary>
public sealed class ReplicatedRedis : IAsyncDisposable
{
    private ReplicatedRedis(RedisChild master, RedisChild replica)
    {
        Master = master;
        Replica = replica;
    }

    public RedisChild Master { get; }

    public RedisChild Replica { get; }

    /// <summary>
    /// Both endpoints. The client learns which one is the master from the servers themselves (ROLE/INFO), and
    /// checks again every second so a promotion done by hand is noticed quickly.
    /// </summary>
    public string ConnectionString =>
        $"127.0.0.1:{Master.Port},127.0.0.1:{Replica.Port},abortConnect=false,connectTimeout=2000,syncTimeout=3000,asyncTimeout=3000,configCheckSeconds=1";

    public static async Task<ReplicatedRedis> StartAsync()
    {
        var master = await RedisChild.StartAsync();
        var replica = await RedisChild.StartAsync(_ => ["--replicaof", "127.0.0.1", master.Port.ToString(CultureInfo.InvariantCulture)]);
        var topology = new ReplicatedRedis(master, replica);
        await RedisAdmin.UntilAsync(replica.Port, info => info.Contains("master_link_status:up", StringComparison.Ordinal), "replication", TimeSpan.FromSeconds(30), "the replica is in sync");
        return topology;
    }

    /// <summary>
    /// Promotes the replica with <c>REPLICAOF NO ONE</c> (after the master was killed): whatever the master had not
    /// sent to the replica is lost, and the promoted replica starts a new replication history.
    /// </summary>
    public async Task PromoteReplicaAsync()
    {
        await RedisAdmin.ExecuteAsync(Replica.Port, "REPLICAOF", "NO", "ONE");
        await RedisAdmin.UntilAsync(Replica.Port, info => info.Contains("role:master", StringComparison.Ordinal), "replication", TimeSpan.FromSeconds(30), "the replica is a master");
    }

    public async ValueTask DisposeAsync()
    {
        await Replica.DisposeAsync();
        await Master.DisposeAsync();
    }
}

/// <summary>One node of a Redis Cluster as <c>CLUSTER NODES</c> lists it.</summary>
public sealed record ClusterNode(string Id, int Port, bool IsMaster, string? MasterId, IReadOnlyList<(int From, int To)> Slots)
{
    public bool Owns(int slot) => Slots.Any(s => s.From <= slot && slot <= s.To);
}

/// <summary>
/// A Redis Cluster of three masters with one replica each: six redis-server children (<c>--cluster-enabled yes</c>,
/// client and bus ports both free loopback ports) joined by <c>redis-cli --cluster create ... --cluster-replicas 1</c>.
/// </summary>
public sealed class RedisClusterChildren : IAsyncDisposable
{
    /// <summary>How long a silent master stays a master: short, so a killed one is replaced within a few seconds.</summary>
    public static readonly TimeSpan NodeTimeout = TimeSpan.FromSeconds(3);

    private readonly List<RedisChild> _nodes;

    private RedisClusterChildren(List<RedisChild> nodes)
    {
        _nodes = nodes;
    }

    public IReadOnlyList<RedisChild> Children => _nodes;

    /// <summary>Every node as a seed; the client discovers the slot map from any of them.</summary>
    public string ConnectionString =>
        string.Join(",", _nodes.Select(n => $"127.0.0.1:{n.Port}")) + ",abortConnect=false,connectTimeout=2000,syncTimeout=3000,asyncTimeout=3000,configCheckSeconds=1";

    public static async Task<RedisClusterChildren> StartAsync()
    {
        var nodes = new List<RedisChild>();
        var cluster = new RedisClusterChildren(nodes);
        try
        {
            for (var i = 0; i < 6; i++)
            {
                nodes.Add(await RedisChild.StartAsync(_ =>
                [
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", ((int)NodeTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
                    "--cluster-port", RedisChild.FreePort().ToString(CultureInfo.InvariantCulture),
                    // The other shards keep serving while one has no master (the default stops the whole cluster).
                    "--cluster-require-full-coverage", "no",
                ]));
            }
            var args = new List<string> { "--cluster", "create" };
            args.AddRange(nodes.Select(n => $"127.0.0.1:{n.Port}"));
            args.AddRange(["--cluster-replicas", "1", "--cluster-yes"]);
            var (code, output) = await RedisAdmin.RunCliAsync(args, TimeSpan.FromSeconds(60));
            if (code != 0)
            {
                throw new InvalidOperationException($"redis-cli --cluster create failed ({code}): {output}");
            }
            await cluster.WaitHealthyAsync(TimeSpan.FromSeconds(60));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Every running node reports cluster_state:ok and every master's replica is in sync.</summary>
    public async Task WaitHealthyAsync(TimeSpan timeout)
    {
        foreach (var node in _nodes.Where(n => n.IsRunning))
        {
            await RedisAdmin.UntilAsync(node.Port, info => info.Contains("cluster_state:ok", StringComparison.Ordinal), "cluster-info", timeout, $"node {node.Port} sees the cluster ok");
        }
        foreach (var replica in (await NodesAsync()).Where(n => !n.IsMaster))
        {
            await RedisAdmin.UntilAsync(replica.Port, info => info.Contains("master_link_status:up", StringComparison.Ordinal), "replication", timeout, $"replica {replica.Port} is in sync");
        }
    }

    /// <summary>The cluster as a running node sees it (connected nodes only).</summary>
    public async Task<IReadOnlyList<ClusterNode>> NodesAsync()
    {
        var port = _nodes.First(n => n.IsRunning).Port;
        var text = (string)(await RedisAdmin.ExecuteAsync(port, "CLUSTER", "NODES"))!;
        // Over RESP3 the reply is a verbatim string, which may come with its "txt:" format prefix.
        text = text.StartsWith("txt:", StringComparison.Ordinal) ? text[4..] : text;
        var result = new List<ClusterNode>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot> ...
            var f = line.Split(' ');
            var flags = f[2].Split(',');
            if (flags.Contains("fail") || flags.Contains("noaddr") || f[7] != "connected")
            {
                continue;
            }
            var address = f[1].Split('@')[0];
            var nodePort = int.Parse(address[(address.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);
            var slots = f.Skip(8).Where(s => !s.StartsWith('[')).Select(s =>
            {
                var dash = s.IndexOf('-', StringComparison.Ordinal);
                return dash < 0
                    ? (int.Parse(s, CultureInfo.InvariantCulture), int.Parse(s, CultureInfo.InvariantCulture))
                    : (int.Parse(s[..dash], CultureInfo.InvariantCulture), int.Parse(s[(dash + 1)..], CultureInfo.InvariantCulture));
            }).ToArray();
            result.Add(new ClusterNode(f[0], nodePort, flags.Contains("master"), f[3] == "-" ? null : f[3], slots));
        }
        return result;
    }

    /// <summary>The master that holds a fleet's keys: the one owning the slot of its hash tag <c>{prefix}</c>.</summary>
    public async Task<ClusterNode> MasterOfAsync(string prefix)
    {
        var port = _nodes.First(n => n.IsRunning).Port;
        var slot = (int)(long)(await RedisAdmin.ExecuteAsync(port, "CLUSTER", "KEYSLOT", "{" + prefix + "}"));
        return (await NodesAsync()).Single(n => n.IsMaster && n.Owns(slot));
    }

    /// <summary>The replica of <paramref name="master"/>.</summary>
    public async Task<ClusterNode> ReplicaOfAsync(ClusterNode master)
    {
        var nodes = await NodesAsync();
        return nodes.SingleOrDefault(n => n.MasterId == master.Id)
            ?? throw new InvalidOperationException($"Master {master.Port} has no connected replica: {string.Join("; ", nodes)}");
    }

    public RedisChild Child(ClusterNode node) => _nodes.Single(n => n.Port == node.Port);

    /// <summary>
    /// Waits until a master other than <paramref name="previous"/> owns <paramref name="prefix"/>'s slot (the
    /// cluster's own election after the node timeout, once the old master stopped answering). Returns it.
    /// </summary>
    public async Task<ClusterNode> WaitPromotedAsync(string prefix, ClusterNode previous, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var now = await MasterOfAsync(prefix);
                if (now.Id != previous.Id)
                {
                    return now;
                }
            }
            catch (InvalidOperationException)
            {
                // No connected master owns the slot yet: the election is still running.
            }
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"No replica took over from master {previous.Port} within {timeout}.");
            }
            await Task.Delay(200);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }
}

/// <summary>Makes a replica miss its master's writes, so that a failover loses them, as asynchronous replication can.</summary>
public static class ReplicaLag
{
    /// <summary>
    /// More than the loopback socket buffers between master and replica hold: while the replica is suspended, the
    /// master's writes after this one wait in the master's own memory and die with it.
    /// </summary>
    private const int BallastBytes = 16 << 20;

    /// <summary>
    /// Suspends <paramref name="replica"/> and writes a ballast value through <paramref name="db"/> to the key
    /// <paramref name="ballastKey"/> (in the slot whose master feeds that replica). From now until the master is killed,
    /// nothing it writes reaches the replica; resume the replica after killing the master.
    /// </summary>
    public static async Task CutOffAsync(RedisChild replica, IDatabase db, RedisKey ballastKey)
    {
        replica.Suspend();
        await db.StringSetAsync(ballastKey, new byte[BallastBytes]);
    }
}

/// <summary>Admin commands sent to one node directly (never routed through a cluster-aware client).</summary>
public static class RedisAdmin
{
    public static async Task<RedisResult> ExecuteAsync(int port, string command, params object[] args)
    {
        await using var mux = await ConnectionMultiplexer.ConnectAsync(Direct(port));
        return await mux.GetServer("127.0.0.1", port).ExecuteAsync(command, args);
    }

    /// <summary>Polls INFO <paramref name="section"/> (or CLUSTER INFO for <c>cluster-info</c>) until it satisfies the condition.</summary>
    public static async Task UntilAsync(int port, Func<string, bool> condition, string section, TimeSpan timeout, string what)
    {
        var sw = Stopwatch.StartNew();
        var last = "";
        while (true)
        {
            try
            {
                last = section == "cluster-info"
                    ? (string)(await ExecuteAsync(port, "CLUSTER", "INFO"))!
                    : (string)(await ExecuteAsync(port, "INFO", section))!;
                if (condition(last))
                {
                    return;
                }
            }
            catch (RedisException e)
            {
                last = e.Message;
            }
            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout} waiting for: {what}. Last answer: {last}");
            }
            await Task.Delay(100);
        }
    }

    public static async Task<(int ExitCode, string Output)> RunCliAsync(IEnumerable<string> args, TimeSpan timeout)
    {
        var server = RedisServerBinary.Find() ?? throw new InvalidOperationException($"redis-cli comes with redis-server: {RedisServerBinary.MissingReason}.");
        var cli = Path.Combine(Path.GetDirectoryName(server)!, "redis-cli");
        var info = new ProcessStartInfo(cli) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>A plain connection to one node: no cluster discovery, admin commands allowed.</summary>
    private static ConfigurationOptions Direct(int port)
    {
        var options = ConfigurationOptions.Parse($"127.0.0.1:{port},allowAdmin=true,abortConnect=true,connectTimeout=2000,syncTimeout=5000");
        return options;
    }
}
