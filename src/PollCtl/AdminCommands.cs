using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using PollCtl.Manifest;
using PollLease.Coordination;
using PollLease.Messages;
using PollLease.Sessions;

namespace PollCtl;

/// <summary>`pollctl status`, `pollctl sessions ...`, `pollctl messages`: the fleet's keys read and edited without raw redis-cli.</summary>
internal static class AdminCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Status(Option<string?> redis, Option<int> port, Option<string> prefix)
    {
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var command = new Command("status", "Live instances, sessions with owner, token and TTL, unowned sessions, counts against ceil(S/N)") { redis, port, prefix, json };
        command.SetAction((p, ct) => Cli.GuardAsync(async () =>
        {
            var target = Cli.Target(p, redis, port, prefix);
            await using var connection = await Cli.ConnectAsync(target).ConfigureAwait(false);
            var status = await new FleetStatusReader(connection, target.Prefix).ReadAsync(ct).ConfigureAwait(false);
            if (p.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    serverTime = status.ServerTime,
                    nodes = status.Nodes.Select(n => new { id = n.InstanceId, live = n.Live, heartbeatExpiresInMs = (long)n.HeartbeatExpiresIn.TotalMilliseconds }),
                    leases = status.Leases.Select(l => new { session = l.SessionId, owner = l.Owner, token = l.Token, ttlMs = l.LeaseExpiresIn is { } t ? (long)t.TotalMilliseconds : (long?)null, paused = l.Paused }),
                    unowned = status.Unowned,
                    ideal = status.Ideal,
                    counts = status.CountsByOwner,
                }, Json));
                return 0;
            }
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"instances: {status.LiveCount} live   sessions: {status.Leases.Count} ({status.ActiveCount} active)   unowned: {status.Unowned.Count}   ideal per instance: <= {status.Ideal}"));
            foreach (var node in status.Nodes)
            {
                var count = status.CountsByOwner.GetValueOrDefault(node.InstanceId);
                var age = node.Live ? string.Create(CultureInfo.InvariantCulture, $"heartbeat expires in {node.HeartbeatExpiresIn.TotalSeconds:0.0} s") : "dead";
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {node.InstanceId,-36} {count,5} / {status.Ideal,-5} {age}"));
            }
            Console.Out.WriteLine();
            Console.Out.WriteLine($"  {"SESSION",-32} {"OWNER",-36} {"TOKEN",16} {"TTL",8}");
            foreach (var lease in status.Leases)
            {
                var ttl = lease.LeaseExpiresIn is { } t ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:0.0}s") : "-";
                Console.Out.WriteLine($"  {lease.SessionId,-32} {lease.Owner ?? (lease.Paused ? "(paused)" : "(unowned)"),-36} {(lease.Owner is null ? "-" : lease.Token.ToString(CultureInfo.InvariantCulture)),16} {ttl,8}");
            }
            return 0;
        }));
        return command;
    }

    public static Command Sessions(Option<string?> redis, Option<int> port, Option<string> prefix)
    {
        var id = new Argument<string>("id") { Description = "Session id (A-Z a-z 0-9 . _ -, up to 128)" };
        var targetArg = new Argument<string>("target") { Description = "What to poll: a URI for the http handler, or any string your handler understands" };
        var interval = new Option<int?>("--interval") { Description = "Poll interval in seconds, 4 to 120 (default 30)" };

        var add = new Command("add", "Add a session") { id, targetArg, interval, redis, port, prefix };
        add.SetAction((p, ct) => WithCatalogAsync(p, redis, port, prefix, async catalog =>
        {
            var seconds = p.GetValue(interval);
            var session = await catalog.AddAsync(p.GetValue(id)!, p.GetValue(targetArg)!, seconds is null ? null : TimeSpan.FromSeconds(seconds.Value), null, ct).ConfigureAwait(false);
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"added {session.Id} every {session.Interval.TotalSeconds:0} s"));
        }));

        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var list = new Command("list", "List sessions") { json, redis, port, prefix };
        list.SetAction((p, ct) => WithCatalogAsync(p, redis, port, prefix, async catalog =>
        {
            var sessions = await catalog.ListAsync(ct).ConfigureAwait(false);
            if (p.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(sessions.Select(s => new { id = s.Id, target = s.Target, intervalSeconds = s.Interval.TotalSeconds, paused = s.Paused, metadata = s.Metadata }), Json));
                return;
            }
            foreach (var s in sessions)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{s.Id,-32} {s.Interval.TotalSeconds,4:0}s {(s.Paused ? "paused" : "active"),-7} {s.Target}"));
            }
        }));

        Command Simple(string name, string description, Func<SessionCatalog, string, CancellationToken, Task> act, string done)
        {
            var sessionId = new Argument<string>("id") { Description = "Session id" };
            var c = new Command(name, description) { sessionId, redis, port, prefix };
            c.SetAction((p, ct) => WithCatalogAsync(p, redis, port, prefix, async catalog =>
            {
                await act(catalog, p.GetValue(sessionId)!, ct).ConfigureAwait(false);
                Console.Out.WriteLine($"{done} {p.GetValue(sessionId)}");
            }));
            return c;
        }

        return new Command("sessions", "Manage the session catalog in Redis")
        {
            add,
            list,
            Simple("pause", "Pause a session (its lease is released within a cycle)", (c, s, ct) => c.PauseAsync(s, ct), "paused"),
            Simple("resume", "Resume a paused session", (c, s, ct) => c.ResumeAsync(s, ct), "resumed"),
            Simple("remove", "Remove a session", async (c, s, ct) =>
            {
                if (!await c.RemoveAsync(s, ct).ConfigureAwait(false))
                {
                    throw new PollCtlException($"session '{s}' does not exist");
                }
            }, "removed"),
        };
    }

    public static Command Messages(Option<string?> redis, Option<int> port, Option<string> prefix)
    {
        var id = new Argument<string>("session") { Description = "Session id" };
        var tail = new Option<int?>("--tail") { Description = "Only the last N messages" };
        var command = new Command("messages", "Print a session's message log, oldest first") { id, tail, redis, port, prefix };
        command.SetAction((p, ct) => Cli.GuardAsync(async () =>
        {
            var target = Cli.Target(p, redis, port, prefix);
            await using var connection = await Cli.ConnectAsync(target).ConfigureAwait(false);
            var log = new MessageLog(connection, target.Prefix);
            foreach (var m in await log.ReadAsync(p.GetValue(id)!, p.GetValue(tail), ct).ConfigureAwait(false))
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{m.At:O} token={m.Token} {m.Body}"));
            }
            return 0;
        }));
        return command;
    }

    public static Command Apply(Option<string?> redis, Option<int> port, Option<string> prefix)
    {
        var file = new Option<string>("--file", "-f") { Description = "Manifest: {\"sessions\":[{\"id\",\"target\",\"intervalSeconds\",\"paused\",\"metadata\"}]}", Required = true };
        var state = new Option<string?>("--state") { Description = "State file recording what applies created (default: <manifest>.state)" };
        var lockTimeout = new Option<TimeSpan>("--lock-timeout") { Description = "How long to wait for another apply (hh:mm:ss)", DefaultValueFactory = _ => TimeSpan.FromSeconds(30) };
        var dryRun = new Option<bool>("--dry-run") { Description = "Show what would change; change nothing" };
        var command = new Command("apply", "Reconcile the catalog with a manifest; removes only sessions earlier applies of the same state file created") { file, state, lockTimeout, dryRun, redis, port, prefix };
        command.SetAction((p, ct) => WithCatalogAsync(p, redis, port, prefix, async catalog =>
        {
            var path = p.GetValue(file)!;
            string text;
            try
            {
                text = await File.ReadAllTextAsync(path, ct).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new ArgumentException($"--file {path}: {e.Message}");
            }
            var sessions = CatalogManifest.Parse(text, path);
            var statePath = p.GetValue(state) ?? path + ".state";
            try
            {
                var result = await CatalogManifest.ApplyAsync(catalog, sessions, statePath, p.GetValue(lockTimeout), p.GetValue(dryRun), null, ct).ConfigureAwait(false);
                var verb = p.GetValue(dryRun) ? "would be " : "";
                Console.Out.WriteLine($"{verb}added: {result.Added.Count}, {verb}updated: {result.Updated.Count}, {verb}removed: {result.Removed.Count}, unchanged: {result.Unchanged.Count}");
                foreach (var (label, ids) in new[] { ("+", result.Added), ("~", result.Updated), ("-", result.Removed) })
                {
                    foreach (var id in ids)
                    {
                        Console.Out.WriteLine($"  {label} {id}");
                    }
                }
            }
            catch (StateFileLockedException e)
            {
                throw new PollCtlException(e.Message);
            }
            catch (StateCorruptedException e)
            {
                throw new PollCtlException(e.Message);
            }
        }));
        return command;
    }

    private static Task<int> WithCatalogAsync(ParseResult p, Option<string?> redis, Option<int> port, Option<string> prefix, Func<SessionCatalog, Task> act) =>
        Cli.GuardAsync(async () =>
        {
            var target = Cli.Target(p, redis, port, prefix);
            await using var connection = await Cli.ConnectAsync(target).ConfigureAwait(false);
            try
            {
                await act(new SessionCatalog(connection, target.Prefix)).ConfigureAwait(false);
            }
            catch (KeyNotFoundException e)
            {
                throw new PollCtlException(e.Message);
            }
            catch (InvalidOperationException e)
            {
                throw new PollCtlException(e.Message);
            }
            return 0;
        });
}
