using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using PollLease.Coordination;
using PollLease.Messages;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Tests.Hosting;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Polling;

/// <summary>
/// Five full instances (Generic Host + AddPollLease + record handler) on real Redis polling 50 sessions while
/// instances join, leave and crash; then every session's message log is checked.
/// </summary>
public abstract class RecordFleetTests(RedisFixture fixture)
{
    private static readonly TimeSpan Interval = PollSession.MinInterval;
    // The lease TTL GenericTestHost.Settings configures.
    private static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(3);
    private readonly string _prefix = RedisFixture.NewPrefix();

    // The shared hosting-test host (loaded-machine timings, record handler), with the library's default jitter.
    private IHost CreateHost(string id)
    {
        var settings = GenericTestHost.Settings(fixture.ConnectionString, _prefix, id);
        settings.Remove("PollLease:Polling:Jitter");
        return GenericTestHost.Build(settings);
    }

    [Fact]
    public async Task Logs_show_one_poller_at_a_time_increasing_tokens_and_no_starved_session_through_joins_leaves_and_a_crash()
    {
        var catalog = new SessionCatalog(fixture.Redis, _prefix);
        var ids = Enumerable.Range(0, 50).Select(i => $"session-{i:D3}").ToArray();
        foreach (var id in ids)
        {
            await catalog.AddAsync(id, "record", Interval);
        }
        var hosts = new Dictionary<string, IHost>(StringComparer.Ordinal);
        async Task StartAsync(string id)
        {
            var host = CreateHost(id);
            hosts[id] = host;
            await host.StartAsync();
        }
        var log = new MessageLog(fixture.Redis, _prefix);
        async Task<int> RecordsAsync()
        {
            var total = 0;
            foreach (var id in ids)
            {
                total += (await log.ReadAsync(id)).Count;
            }
            return total;
        }

        var started = DateTimeOffset.UtcNow;
        try
        {
            foreach (var id in new[] { "node-1", "node-2", "node-3", "node-4", "node-5" })
            {
                await StartAsync(id);
            }
            await Eventually.TrueAsync(async () => await RecordsAsync() >= 100, TimeSpan.FromSeconds(30), "two rounds of polls");

            await StartAsync("node-6");
            await hosts["node-2"].StopAsync();
            var before = await RecordsAsync();
            await Eventually.TrueAsync(async () => await RecordsAsync() >= before + 100, TimeSpan.FromSeconds(30), "polling goes on after a join and a leave");

            // Crash: the instance's connection drops without a release; its host keeps running, fenced off.
            await hosts["node-3"].Services.GetRequiredService<IConnectionMultiplexer>().CloseAsync(allowCommandsToComplete: false);
            before = await RecordsAsync();
            await Eventually.TrueAsync(async () => await RecordsAsync() >= before + 100, TimeSpan.FromSeconds(30), "polling goes on after a crash");
        }
        finally
        {
            foreach (var host in hosts.Values)
            {
                await host.StopAsync(TimeSpan.FromSeconds(5));
                host.Dispose();
            }
        }
        var ended = DateTimeOffset.UtcNow;

        var bound = Interval + LeaseTtl + TimeSpan.FromSeconds(3);
        foreach (var id in ids)
        {
            var records = (await log.ReadAsync(id)).Select(m => (Message: m, Record: PollRecord.TryParse(m.Body)!)).ToList();
            Assert.NotEmpty(records);
            for (var i = 1; i < records.Count; i++)
            {
                var (prev, next) = (records[i - 1], records[i]);
                Assert.True(next.Message.Token >= prev.Message.Token, $"{id}: token {next.Message.Token} after {prev.Message.Token}");
                if (next.Message.Token == prev.Message.Token)
                {
                    Assert.Equal(prev.Record.Instance, next.Record.Instance);
                }
                else
                {
                    // A new owner's first poll comes after the previous owner's last one: no interleaving.
                    Assert.True(next.Record.Polled >= prev.Record.Polled, $"{id}: {next.Record.Instance} polled at {next.Record.Polled:O} before {prev.Record.Instance}'s {prev.Record.Polled:O}");
                }
                Assert.True(next.Record.Polled - prev.Record.Polled <= bound, $"{id}: unpolled for {(next.Record.Polled - prev.Record.Polled).TotalSeconds:0.0} s between {prev.Record.Instance} and {next.Record.Instance}");
            }
            Assert.True(records[0].Record.Polled - started <= bound + TimeSpan.FromSeconds(2), $"{id}: first poll only after {(records[0].Record.Polled - started).TotalSeconds:0.0} s");
            Assert.All(records, r => Assert.Equal(r.Message.Token, r.Record.Token));
            Assert.DoesNotContain(records, r => r.Record.Polled > ended);
        }
    }
}

public sealed class RecordFleetTests_RedisServer(RedisServerFixture f) : RecordFleetTests(f), IClassFixture<RedisServerFixture>;

public sealed class RecordFleetTests_Garnet(GarnetFixture f) : RecordFleetTests(f), IClassFixture<GarnetFixture>;
