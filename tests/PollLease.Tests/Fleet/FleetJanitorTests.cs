using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Options;
using PollLease.Election;
using PollLease.Fleet;
using PollLease.Hosting;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Telemetry;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;
using static PollLease.Tests.Election.ElectionTestKit;

namespace PollLease.Tests.Fleet;

public abstract class FleetJanitorTests(RedisFixture fixture)
{
    private readonly string _prefix = RedisFixture.NewPrefix();

    private string Key(string rest) => $"{{{_prefix}}}:{rest}";

    [Fact]
    public async Task Exactly_one_of_three_instances_cleans_the_dead_instance_and_the_removed_sessions_keys_and_reports_the_fleet()
    {
        await SeedFleetAsync();
        var factories = Enumerable.Range(0, 3).Select(_ => new TestMeterFactory()).ToArray();
        var janitors = Enumerable.Range(0, 3).Select(i => new FleetJanitor(fixture.Redis, _prefix, $"node-{i}", TimeSpan.FromSeconds(10), JanitorOptionsFor(i), meterFactory: factories[i])).ToArray();
        var live = factories.Select(f => new MetricCollector<int>(f, PollLeaseTelemetry.MeterName, "polllease.fleet.instances")).ToArray();
        try
        {
            await Task.WhenAll(janitors.Select(j => j.StartAsync()));
            var db = fixture.Redis.GetDatabase();
            await Eventually.TrueAsync(async () =>
                    await db.SortedSetScoreAsync(Key("nodes"), "dead") is null
                    && !await db.KeyExistsAsync(Key("node:dead"))
                    && !await db.KeyExistsAsync(Key("lease:gone"))
                    && !await db.KeyExistsAsync(Key("fence:gone"))
                    && !await db.KeyExistsAsync(Key("fence:old")),
                Deadline, "dead instance, orphaned lease and fences cleaned");

            var janitor = Assert.Single(janitors, j => j.Removed != (0, 0, 0));
            Assert.True(janitor.IsJanitor);
            Assert.Equal((1L, 1L, 2L), janitor.Removed);
            Assert.All(janitors.Where(j => j != janitor), j => Assert.Null(j.LastSweep));

            // Everything that is alive or in the catalog is untouched.
            Assert.NotNull(await db.SortedSetScoreAsync(Key("nodes"), "node-a"));
            foreach (var s in new[] { "s1", "s2", "s3" })
            {
                Assert.True(await db.KeyExistsAsync(Key($"lease:{s}")), s);
                Assert.True(await db.KeyExistsAsync(Key($"fence:{s}")), s);
            }

            var sweep = janitor.LastSweep!;
            Assert.Equal((2, 4, 1, 2, 2), (sweep.LiveInstances, sweep.Sessions, sweep.Unowned, sweep.Busiest, sweep.Ideal));
            Assert.Equal(1.0, sweep.Balance);
            for (var i = 0; i < 3; i++)
            {
                live[i].RecordObservableInstruments();
                if (janitors[i] == janitor)
                {
                    Assert.Equal(2, live[i].LastMeasurement!.Value); // only the janitor reports the fleet
                }
                else
                {
                    Assert.Null(live[i].LastMeasurement);
                }
            }
        }
        finally
        {
            foreach (var j in janitors)
            {
                await j.DisposeAsync();
            }
            foreach (var c in live)
            {
                c.Dispose();
            }
            foreach (var f in factories)
            {
                f.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_janitor_whose_token_is_no_longer_current_removes_nothing()
    {
        await SeedFleetAsync();
        await using var janitor = new FleetJanitor(fixture.Redis, _prefix, "node-x", TimeSpan.FromSeconds(10), JanitorOptionsFor(0, TimeSpan.FromMinutes(10)));
        await janitor.StartAsync();
        await Eventually.TrueAsync(() => janitor.IsJanitor && janitor.LastSweep is not null, Deadline, "elected and swept once");
        var token = janitor.Election.Token;
        await fixture.Redis.GetDatabase().SortedSetAddAsync(Key("nodes"), "dead2", 1);
        await fixture.Redis.GetDatabase().StringSetAsync(Key("lease:gone2"), "node-b|7", TimeSpan.FromMinutes(1));

        Assert.Null(await janitor.SweepAsync(token - 1, CancellationToken.None)); // an older term
        await fixture.Redis.GetDatabase().StringSetAsync(Key("leader:janitor"), $"node-y|{token + 1}", TimeSpan.FromMinutes(1));
        Assert.Null(await janitor.SweepAsync(token, CancellationToken.None)); // the role moved on

        Assert.NotNull(await fixture.Redis.GetDatabase().SortedSetScoreAsync(Key("nodes"), "dead2"));
        Assert.True(await fixture.Redis.GetDatabase().KeyExistsAsync(Key("lease:gone2")));
    }

    [Fact]
    public void Janitor_options_are_validated_only_when_enabled_and_include_the_election_rules()
    {
        var o = new JanitorOptions { Enabled = false, Interval = TimeSpan.Zero, ScanPageSize = 1 };
        Assert.Empty(JanitorOptionsValidator.GetFailures(o));
        o.Enabled = true;
        o.Election.Role = JanitorOptions.Role;
        o.Election.InstanceId = "node-a";
        o.Election.RenewDeadline = TimeSpan.FromSeconds(20);

        var failures = JanitorOptionsValidator.GetFailures(o);

        Assert.Equal(3, failures.Count);
        Assert.Contains(failures, f => f.StartsWith("PollLease:Janitor:Interval = 00:00:00 is invalid: it must be at least 50 ms.", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("PollLease:Janitor:ScanPageSize = 1 is invalid: it must be between 10 and 10000.", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("PollLease:Janitor:Election:RenewDeadline = 00:00:20 is invalid: it must be at most 0.9 x Ttl (00:00:13.5)", StringComparison.Ordinal));
    }

    [Fact]
    public void Janitor_election_must_be_set_and_its_field_rules_carry_the_janitor_path()
    {
        var o = new JanitorOptions { Election = null! };
        Assert.Equal(["PollLease:Janitor:Election = null is invalid: it must be set."], JanitorOptionsValidator.GetFailures(o));

        o.Election = new ElectionOptions { Role = JanitorOptions.Role, InstanceId = "node a", CallbackTimeout = TimeSpan.Zero };
        Assert.Equal(
            [
                "PollLease:Janitor:Election:InstanceId = 'node a' is invalid: it must be 1 to 128 characters of letters, digits, '.', '_' or '-'.",
                "PollLease:Janitor:Election:CallbackTimeout = 00:00:00 is invalid: it must be at least 50 ms.",
            ],
            JanitorOptionsValidator.GetFailures(o));
    }

    private static JanitorOptions JanitorOptionsFor(int i, TimeSpan? interval = null) => new()
    {
        Enabled = true,
        Interval = interval ?? TimeSpan.FromMilliseconds(200),
        ScanPageSize = 10,
        Election = Options("unused", $"node-{i}"),
    };

    /// <summary>
    /// Two live instances and a dead one; four catalog sessions (s1, s2 held by node-a, s3 by node-b, s4 unowned);
    /// session "gone" removed from the catalog with its lease and fence left behind; "old" with only a fence.
    /// </summary>
    private async Task SeedFleetAsync()
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        foreach (var s in new[] { "s1", "s2", "s3", "s4", "gone" })
        {
            await catalog.AddAsync(s, "opaque:" + s);
        }
        await catalog.RemoveAsync("gone");
        var db = fixture.Redis.GetDatabase();
        var t = (RedisResult[])(await db.ExecuteAsync("TIME"))!;
        var now = (long)t[0] * 1000 + (long)t[1] / 1000;
        await db.SortedSetAddAsync(Key("nodes"), [new("node-a", now + 600_000), new("node-b", now + 600_000), new("dead", now - 120_000)]);
        await db.StringSetAsync(Key("node:dead"), "{}", TimeSpan.FromMinutes(10));
        var leases = new (string Session, string Owner)[] { ("s1", "node-a"), ("s2", "node-a"), ("s3", "node-b"), ("gone", "node-b") };
        foreach (var (session, owner) in leases)
        {
            await db.StringSetAsync(Key($"lease:{session}"), $"{owner}|{now}", TimeSpan.FromMinutes(10));
            await db.StringSetAsync(Key($"fence:{session}"), now);
        }
        await db.StringSetAsync(Key("fence:old"), now - 1000);
    }
}

public sealed class FleetJanitorTests_RedisServer(RedisServerFixture f) : FleetJanitorTests(f), IClassFixture<RedisServerFixture>;

public sealed class FleetJanitorTests_Garnet(GarnetFixture f) : FleetJanitorTests(f), IClassFixture<GarnetFixture>;

/// <summary>The janitor wired through AddPollLease: off by default, one elected instance when enabled.</summary>
public sealed class FleetJanitorHostingTests(RedisServerFixture fixture) : IClassFixture<RedisServerFixture>
{
    private readonly string _prefix = RedisFixture.NewPrefix();

    private IHost CreateHost(string id, bool enabled, ISessionSource? sessions = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        if (sessions is not null)
        {
            builder.Services.AddSingleton(sessions);
        }
        string Ms(int ms) => TimeSpan.FromMilliseconds(ms).ToString("c", CultureInfo.InvariantCulture);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PollLease:Redis"] = fixture.ConnectionString,
            ["PollLease:KeyPrefix"] = _prefix,
            ["PollLease:InstanceId"] = id,
            ["PollLease:Janitor:Enabled"] = enabled ? "true" : "false",
            ["PollLease:Janitor:Interval"] = Ms(200),
            ["PollLease:Janitor:Election:Ttl"] = Ms(3000),
            ["PollLease:Janitor:Election:RenewDeadline"] = Ms(2000),
            ["PollLease:Janitor:Election:RenewInterval"] = Ms(200),
            ["PollLease:Janitor:Election:RetryPeriod"] = Ms(300),
            ["PollLease:Janitor:Election:OperationTimeout"] = Ms(1000),
            ["PollLease:Janitor:Election:DisconnectGracePeriod"] = Ms(1000),
        });
        builder.Services.AddPollLease(builder.Configuration);
        builder.Services.AddPollHandler<RecordPollHandler>();
        return builder.Build();
    }

    [Fact]
    public async Task With_an_application_supplied_session_source_the_janitor_cleans_no_orphans_and_leaves_the_bound_options_as_configured()
    {
        // Sessions come from the application, not the catalog: a lease of a session missing from the catalog is not an orphan.
        await new SessionCatalog(fixture.Redis, _prefix).AddAsync("kept", "record");
        var db = fixture.Redis.GetDatabase();
        await db.StringSetAsync($"{{{_prefix}}}:lease:elsewhere", "node-z|5", TimeSpan.FromMinutes(5));
        using var host = CreateHost("node-1", enabled: true, StaticSessionSource.FromIds(["elsewhere"]));
        await host.StartAsync();
        try
        {
            await global::PollLease.Tests.Hosting.GenericTestHost.WaitUntilRunningAsync(host);
            var janitor = host.Services.GetRequiredService<FleetJanitorHostedService>().Janitor!;
            await Eventually.TrueAsync(() => janitor.IsJanitor && janitor.LastSweep is not null, Deadline, "node-1 swept as janitor");
            var first = janitor.LastSweep;
            await Eventually.TrueAsync(() => !ReferenceEquals(janitor.LastSweep, first), Deadline, "a second sweep");

            Assert.True(await db.KeyExistsAsync($"{{{_prefix}}}:lease:elsewhere"));
            Assert.Equal(0, janitor.Removed.Leases);
            Assert.True(host.Services.GetRequiredService<IOptions<JanitorOptions>>().Value.CleanOrphans);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task When_disabled_there_is_no_janitor_and_when_enabled_one_host_is_the_janitor_and_cleans_a_removed_sessions_lease()
    {
        using var off = CreateHost("node-off", enabled: false);
        Assert.Null(off.Services.GetRequiredService<FleetJanitorHostedService>().Janitor);

        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        await catalog.AddAsync("kept", "record");
        await fixture.Redis.GetDatabase().StringSetAsync($"{{{_prefix}}}:lease:gone", "node-z|5", TimeSpan.FromMinutes(5));
        var hosts = new[] { CreateHost("node-1", enabled: true), CreateHost("node-2", enabled: true) };
        try
        {
            foreach (var h in hosts)
            {
                await h.StartAsync();
                // The janitor joins the election in the background once the connection exists.
                await global::PollLease.Tests.Hosting.GenericTestHost.WaitUntilRunningAsync(h);
            }
            var janitors = hosts.Select(h => h.Services.GetRequiredService<FleetJanitorHostedService>().Janitor!).ToArray();

            await Eventually.TrueAsync(async () => !await fixture.Redis.GetDatabase().KeyExistsAsync($"{{{_prefix}}}:lease:gone"), Deadline, "orphaned lease removed");
            await Eventually.TrueAsync(() => janitors.Count(j => j.IsJanitor) == 1 && janitors.Single(j => j.IsJanitor).LastSweep is { Sessions: 1, LiveInstances: 2 },
                Deadline, "one janitor reporting two instances and one session");
            Assert.Equal(1, janitors.Sum(j => j.Removed.Leases));
        }
        finally
        {
            foreach (var h in hosts)
            {
                await h.StopAsync();
                h.Dispose();
            }
        }
    }
}
