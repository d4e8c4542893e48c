using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PollLease.Coordination;
using PollLease.Hosting;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Telemetry;
using StackExchange.Redis;

namespace PollCtl;

internal sealed record RunSettings(string? Redis, int Port, string Prefix, int Instances, bool Plain, TimeSpan LeaseTtl, bool LoadSample);

/// <summary>
/// `pollctl run`: 1..N PollLease instances in this process, each a Generic Host of its own (own connection,
/// own instance id), exactly as PollFunctions hosts one. Ctrl+C stops them gracefully: leases released.
/// </summary>
internal static class RunCommand
{
    public static async Task<int> RunAsync(RunSettings settings, CancellationToken cancellationToken)
    {
        if (settings.Instances is < 1 or > 100)
        {
            throw new ArgumentException($"--instances = {settings.Instances} is invalid: it must be between 1 and 100.");
        }
        if (settings.LeaseTtl < TimeSpan.FromSeconds(1) || settings.LeaseTtl > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentException($"--lease-ttl = {settings.LeaseTtl} is invalid: it must be between 1 s and 10 min.");
        }

        // Own the stop signals: Ctrl+C and SIGTERM end the run gracefully (leases released) whatever else listens.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        cancellationToken = stop.Token;
        using var redis = await EmbeddedRedis.ResolveAsync(EmbeddedRedis.Configured(settings.Redis), settings.Port, allowEmbedded: true).ConfigureAwait(false);
        await using var admin = await Cli.ConnectAsync(new AdminTarget(redis.ConnectionString, settings.Port, settings.Prefix)).ConfigureAwait(false);
        if (redis.StartedHere)
        {
            // A server this process has just started holds no lease of any earlier instance: the fleet's first epoch
            // needs no data-loss quarantine (on any other server a first start waits one lease TTL).
            await DataLossGuard.EstablishNewFleetAsync(admin.GetDatabase(), new RedisKeys(settings.Prefix)).ConfigureAwait(false);
        }
        var catalog = new SessionCatalog(admin, settings.Prefix);
        var loaded = 0;
        if (settings.LoadSample && (await catalog.ListAsync(cancellationToken).ConfigureAwait(false)).Count == 0)
        {
            foreach (var session in SampleCatalog.Load())
            {
                await catalog.UpsertAsync(session, cancellationToken).ConfigureAwait(false);
                loaded++;
            }
        }

        var fleet = new Fleet(settings, redis.ConnectionString);
        var left = 0;
        Console.Out.WriteLine($"pollctl: {redis.Description}, prefix '{settings.Prefix}', {settings.Instances} instance(s), lease TTL {settings.LeaseTtl.TotalSeconds:0.#} s"
            + (loaded > 0 ? $", loaded {loaded} sample sessions" : ""));
        try
        {
            for (var i = 0; i < settings.Instances; i++)
            {
                await fleet.AddAsync(cancellationToken).ConfigureAwait(false);
            }
            if (settings.Plain)
            {
                await PlainView.RunAsync(fleet, admin, settings.Prefix, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await LiveView.RunAsync(fleet, admin, settings.Prefix, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl+C: stop below.
        }
        finally
        {
            left = await fleet.StopAllAsync().ConfigureAwait(false);
            // Without QUIT: on a link that stopped answering it would wait a whole sync timeout before the exit.
            await admin.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
        }
        // Each instance's stop is bounded by its ShutdownTimeout: with Redis unreachable the leases it could not release
        // expire by their TTL, which is an orderly outcome, not a failure.
        Console.Out.WriteLine(left == 0
            ? "pollctl: stopped; leases released"
            : $"pollctl: stopped; {left} leases left to expire (Redis did not confirm their release within the shutdown timeout)");
        return 0;
    }
}

/// <summary>The instances this process runs, plus what the views show about them.</summary>
internal sealed class Fleet
{
    private readonly RunSettings _settings;
    private readonly string _connectionString;
    private readonly List<Member> _members = [];
    private readonly object _lock = new();

    public Fleet(RunSettings settings, string connectionString)
    {
        _settings = settings;
        _connectionString = connectionString;
    }

    public ConcurrentQueue<string> RecentEvents { get; } = new();

    public ConcurrentDictionary<string, long> PollsStarted { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<LeaseManager> Instances
    {
        get
        {
            lock (_lock)
            {
                return _members.Select(m => m.Leases).ToArray();
            }
        }
    }

    public async Task AddAsync(CancellationToken cancellationToken)
    {
        var third = _settings.LeaseTtl / 3;
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PollLease:Redis"] = _connectionString,
            ["PollLease:KeyPrefix"] = _settings.Prefix,
            ["PollLease:LeaseTtl"] = _settings.LeaseTtl.ToString("c", CultureInfo.InvariantCulture),
            ["PollLease:RenewInterval"] = third.ToString("c", CultureInfo.InvariantCulture),
            ["PollLease:HeartbeatTtl"] = _settings.LeaseTtl.ToString("c", CultureInfo.InvariantCulture),
            ["PollLease:HeartbeatInterval"] = third.ToString("c", CultureInfo.InvariantCulture),
            ["PollLease:RetryInterval"] = TimeSpan.FromSeconds(Math.Min(1, third.TotalSeconds)).ToString("c", CultureInfo.InvariantCulture),
            ["PollLease:SafetyMargin"] = (third / 3).ToString("c", CultureInfo.InvariantCulture),
            ["PollLease:OperationTimeout"] = TimeSpan.FromSeconds(Math.Min(5, third.TotalSeconds)).ToString("c", CultureInfo.InvariantCulture),
        });
        builder.Configuration.AddEnvironmentVariables();
        builder.Logging.ClearProviders();
        if (_settings.Plain)
        {
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
                o.IncludeScopes = false;
            });
            builder.Logging.AddFilter("PollLease", LogLevel.Information);
            builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        }
        builder.Services.AddSingleton<IHostLifetime, CommandLineLifetime>();
        builder.Services.AddMetrics();
        builder.Services.AddPollLease(builder.Configuration);
        builder.Services.AddPollHandler<RecordPollHandler>();
        var host = builder.Build();
        var leases = host.Services.GetRequiredService<LeaseManager>();
        leases.LeaseChanged += (_, e) => OnLeaseEvent(e);
        var listener = ListenToPolls(host.Services.GetRequiredService<IMeterFactory>(), leases.InstanceId);
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            _members.Add(new Member(host, leases, listener));
        }
        Note($"{leases.InstanceId} joined");
    }

    /// <summary>Simulates a crash of the newest instance: its connection drops, nothing is released.</summary>
    public async Task KillNewestAsync()
    {
        Member? victim;
        lock (_lock)
        {
            victim = _members.Count > 0 ? _members[^1] : null;
            if (victim is not null)
            {
                _members.RemoveAt(_members.Count - 1);
            }
        }
        if (victim is null)
        {
            return;
        }
        Note($"{victim.Leases.InstanceId} killed (no release): its sessions move after the lease TTL");
        var redis = victim.Host.Services.GetRequiredService<IConnectionMultiplexer>();
        await redis.CloseAsync(allowCommandsToComplete: false).ConfigureAwait(false);
        await victim.Host.StopAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        victim.Dispose();
    }

    /// <summary>Stops every instance at once (each within its ShutdownTimeout).</summary>
    /// <returns>How many leases were left to expire because their release was not confirmed in time.</returns>
    public async Task<int> StopAllAsync()
    {
        Member[] members;
        lock (_lock)
        {
            members = [.. _members];
            _members.Clear();
        }
        var left = await Task.WhenAll(members.Select(async m =>
        {
            await m.Host.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            // A stop that did not finish within the host's stop left everything this instance held.
            var count = m.Leases.LastStop?.LeftToExpire ?? m.Leases.OwnedSessions().Count;
            m.Dispose();
            return count;
        })).ConfigureAwait(false);
        return left.Sum();
    }

    private void OnLeaseEvent(LeaseEvent e)
    {
        if (e.Kind is LeaseEventKind.Acquired or LeaseEventKind.Lost or LeaseEventKind.Released or LeaseEventKind.Uncertain)
        {
            Note($"{e.InstanceId} {e.Kind.ToString().ToLowerInvariant()} {e.SessionId}" + (e.Reason is null ? "" : $" ({e.Reason})") + (e.Token > 0 && e.Kind == LeaseEventKind.Acquired ? $" token={e.Token}" : ""));
        }
    }

    private void Note(string text)
    {
        RecentEvents.Enqueue($"{DateTime.Now:HH:mm:ss} {text}");
        while (RecentEvents.Count > 200 && RecentEvents.TryDequeue(out _))
        {
        }
    }

    private MeterListener ListenToPolls(IMeterFactory meterFactory, string instanceId)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == PollLeaseTelemetry.MeterName && instrument.Name == "polllease.polls.started")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "instance" && tag.Value is string id && id == instanceId)
                {
                    PollsStarted.AddOrUpdate(id, value, (_, v) => v + value);
                }
            }
        });
        listener.Start();
        GC.KeepAlive(meterFactory);
        return listener;
    }

    private sealed record Member(IHost Host, LeaseManager Leases, MeterListener Listener) : IDisposable
    {
        public void Dispose()
        {
            Listener.Dispose();
            Host.Dispose();
        }
    }
}

/// <summary>
/// The instances' hosts do not listen for Ctrl+C themselves (ConsoleLifetime would swallow the signal per host);
/// pollctl's command line owns the signal and stops every host in order.
/// </summary>
internal sealed class CommandLineLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
