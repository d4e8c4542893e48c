using PollLease.Coordination;
using Spectre.Console;
using Spectre.Console.Rendering;
using StackExchange.Redis;

namespace PollCtl;

/// <summary>Plain output for logs and pipes: the instances' log lines plus a fleet summary every 5 seconds.</summary>
internal static class PlainView
{
    public static async Task RunAsync(Fleet fleet, IConnectionMultiplexer redis, string prefix, CancellationToken cancellationToken)
    {
        var reader = new FleetStatusReader(redis, prefix);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5));
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            FleetStatus status;
            try
            {
                status = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // Redis restarting, unreachable or slow (RedisTimeoutException is a TimeoutException, not a
                // RedisException): the instances ride it out, so must the summary.
                await Console.Out.WriteLineAsync($"fleet: status unavailable ({e.Message})").ConfigureAwait(false);
                continue;
            }
            var counts = string.Join(" ", status.CountsByOwner.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={c.Value}"));
            await Console.Out.WriteLineAsync(
                $"fleet: live={status.LiveCount} sessions={status.ActiveCount} unowned={status.Unowned.Count} ideal<={status.Ideal} polls={fleet.PollsStarted.Values.Sum()} {counts}").ConfigureAwait(false);
        }
    }
}

/// <summary>The interactive view: owned leases per instance as bars, lease states, polls per second, recent events.</summary>
internal static class LiveView
{
    public static async Task RunAsync(Fleet fleet, IConnectionMultiplexer redis, string prefix, CancellationToken cancellationToken)
    {
        var reader = new FleetStatusReader(redis, prefix);
        var lastPolls = new Dictionary<string, long>(StringComparer.Ordinal);
        var interactive = !Console.IsInputRedirected;
        await AnsiConsole.Live(new Text("starting...")).AutoClear(false).StartAsync(async ctx =>
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                if (interactive)
                {
                    while (Console.KeyAvailable)
                    {
                        var key = Console.ReadKey(intercept: true).KeyChar;
                        if (key == 'a')
                        {
                            await fleet.AddAsync(cancellationToken).ConfigureAwait(false);
                        }
                        else if (key == 'k')
                        {
                            await fleet.KillNewestAsync().ConfigureAwait(false);
                        }
                        else if (key == 'q')
                        {
                            return;
                        }
                    }
                }
                FleetStatus? status = null;
                string? error = null;
                try
                {
                    status = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    error = e.Message;
                }
                ctx.UpdateTarget(Render(fleet, status, error, lastPolls, interactive));
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
        }).ConfigureAwait(false);
    }

    private static Rows Render(Fleet fleet, FleetStatus? status, string? error, Dictionary<string, long> lastPolls, bool interactive)
    {
        var rows = new List<IRenderable>();
        if (status is null)
        {
            rows.Add(new Markup($"[red]Redis unreachable:[/] {Markup.Escape(error ?? "")}"));
        }
        else
        {
            rows.Add(new Markup($"[bold]PollLease fleet[/]  live instances: [green]{status.LiveCount}[/]  sessions: {status.ActiveCount} active  unowned: "
                + (status.Unowned.Count == 0 ? "[green]0[/]" : $"[yellow]{status.Unowned.Count}[/]") + $"  ideal max per instance: {status.Ideal}"));
            var chart = new BarChart().Width(70).Label("[bold]owned leases per instance[/]");
            foreach (var (owner, count) in status.CountsByOwner.OrderBy(c => c.Key, StringComparer.Ordinal))
            {
                chart.AddItem(owner, count, count > status.Ideal ? Color.Yellow : Color.Green);
            }
            rows.Add(chart);
        }

        var table = new Table().Border(TableBorder.Rounded).AddColumn("instance (this process)").AddColumn("owned").AddColumn("uncertain").AddColumn("polls/s");
        foreach (var leases in fleet.Instances)
        {
            var owned = leases.OwnedSessions();
            var polls = fleet.PollsStarted.GetValueOrDefault(leases.InstanceId);
            var rate = polls - lastPolls.GetValueOrDefault(leases.InstanceId);
            lastPolls[leases.InstanceId] = polls;
            table.AddRow(Markup.Escape(leases.InstanceId), owned.Count(l => l.State == LeaseState.Owned).ToString(System.Globalization.CultureInfo.InvariantCulture),
                owned.Count(l => l.State == LeaseState.Uncertain).ToString(System.Globalization.CultureInfo.InvariantCulture), rate.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        rows.Add(table);
        rows.Add(new Markup("[bold]recent events[/]"));
        foreach (var e in fleet.RecentEvents.Reverse().Take(10))
        {
            rows.Add(new Text(e));
        }
        rows.Add(new Markup(interactive ? "[grey]keys: a = add an instance, k = kill the newest (no release), q or Ctrl+C = stop gracefully[/]" : "[grey]Ctrl+C stops gracefully[/]"));
        return new Rows(rows);
    }
}
