using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using PollLease.Messages;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Tests.Hosting;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Polling;

/// <summary>
/// The poll schedule survives handovers: sessions move between full instances (joins, a graceful stop, a crash)
/// and no session is ever polled sooner than (1 - jitter) x interval after its previous poll, whoever made it.
/// </summary>
public abstract class HandoverTimingTests(RedisFixture fixture)
{
    private static readonly TimeSpan Interval = PollSession.MinInterval;
    private const double Jitter = 0.1;
    private readonly string _prefix = RedisFixture.NewPrefix();

    // The shared hosting-test host (loaded-machine timings, record handler), with the default 10 % jitter.
    private IHost CreateHost(string id)
    {
        var settings = GenericTestHost.Settings(fixture.ConnectionString, _prefix, id);
        settings["PollLease:Polling:Jitter"] = Jitter.ToString(CultureInfo.InvariantCulture);
        return GenericTestHost.Build(settings);
    }

    [Fact]
    public async Task Across_joins_a_graceful_stop_and_a_crash_no_session_is_polled_sooner_than_its_interval_allows()
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        var ids = Enumerable.Range(0, 20).Select(i => $"handover-{i:D2}").ToArray();
        foreach (var id in ids)
        {
            await catalog.AddAsync(id, "record", Interval);
        }
        var log = new MessageLog(fixture.Redis, _prefix);
        async Task<int> FewestAsync()
        {
            var fewest = int.MaxValue;
            foreach (var id in ids)
            {
                fewest = Math.Min(fewest, (await log.ReadAsync(id)).Count);
            }
            return fewest;
        }
        var hosts = new Dictionary<string, IHost>(StringComparer.Ordinal);
        async Task StartAsync(string id)
        {
            hosts[id] = CreateHost(id);
            await hosts[id].StartAsync();
        }
        var deadline = TimeSpan.FromSeconds(40);
        try
        {
            await StartAsync("node-1");
            await Eventually.TrueAsync(async () => await FewestAsync() >= 2, deadline, "node-1 polls every session twice");

            // Joins: sessions are handed from node-1 to the newcomers.
            await StartAsync("node-2");
            await StartAsync("node-3");
            await Eventually.TrueAsync(async () => await FewestAsync() >= 5, deadline, "polling goes on across the joins");

            // A graceful stop hands node-1's sessions over; a crash leaves node-2's to expire.
            await hosts["node-1"].StopAsync();
            await hosts["node-2"].Services.GetRequiredService<IConnectionMultiplexer>().CloseAsync(allowCommandsToComplete: false);
            await Eventually.TrueAsync(async () => await FewestAsync() >= 8, deadline, "polling goes on after a stop and a crash");
        }
        finally
        {
            foreach (var host in hosts.Values)
            {
                await host.StopAsync(TimeSpan.FromSeconds(5));
                host.Dispose();
            }
        }

        // The schedule: no poll is due sooner than (1 - jitter) x interval after the previous one, whoever made it (a
        // few ms of slack for the server-time conversion of a recorded start). Due times, not the moments handlers got
        // a thread: on a loaded machine a handler can start late, which says nothing about the schedule.
        var floor = Interval * (1 - Jitter) - TimeSpan.FromMilliseconds(20);
        var handovers = 0;
        foreach (var id in ids)
        {
            var records = (await log.ReadAsync(id)).Select(m => PollRecord.TryParse(m.Body)!).ToList();
            for (var i = 1; i < records.Count; i++)
            {
                var gap = records[i].Scheduled - records[i - 1].Scheduled;
                handovers += records[i].Token != records[i - 1].Token ? 1 : 0;
                Assert.True(gap >= floor,
                    $"{id}: {records[i].Instance} (token {records[i].Token}) was due {gap.TotalMilliseconds:0} ms after {records[i - 1].Instance} (token {records[i - 1].Token})");
            }
        }
        Assert.True(handovers >= ids.Length / 2, $"only {handovers} handovers were exercised");
    }
}

public sealed class HandoverTimingTests_RedisServer(RedisServerFixture f) : HandoverTimingTests(f), IClassFixture<RedisServerFixture>;

public sealed class HandoverTimingTests_Garnet(GarnetFixture f) : HandoverTimingTests(f), IClassFixture<GarnetFixture>;
