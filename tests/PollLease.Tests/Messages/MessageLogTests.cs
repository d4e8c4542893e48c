using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using PollLease.Messages;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;
using StackExchange.Redis.Profiling;

namespace PollLease.Tests.Messages;

public abstract class MessageLogTests(RedisFixture fixture)
{
    private readonly string _prefix = RedisFixture.NewPrefix();

    private string Key(string session) => $"{{{_prefix}}}:messages:{session}";

    private Task<bool> SetFenceAsync(string session, long token) => fixture.Redis.GetDatabase().StringSetAsync($"{{{_prefix}}}:fence:{session}", token);

    [Fact]
    public async Task A_hundred_concurrent_appends_keep_all_hundred_messages()
    {
        var log = new MessageLog(fixture.Redis, _prefix);
        await SetFenceAsync("s1", 7);

        await Task.WhenAll(Enumerable.Range(0, 100).Select(i => log.AppendAsync("s1", 7, [$"m{i}"])));

        var messages = await log.ReadAsync("s1");
        Assert.Equal(100, messages.Count);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"m{i}").Order(), messages.Select(m => m.Body).Order());
        Assert.All(messages, m => Assert.Equal(7, m.Token));
    }

    [Fact]
    public async Task A_stale_token_is_rejected_with_a_typed_error_and_writes_nothing()
    {
        var log = new MessageLog(fixture.Redis, _prefix);
        await SetFenceAsync("s1", 10);
        await log.AppendAsync("s1", 10, ["first"]);

        var e = await Assert.ThrowsAsync<StaleTokenException>(() => log.AppendAsync("s1", 9, ["zombie", "writes"]));

        Assert.Equal("s1", e.SessionId);
        Assert.Equal(9, e.Token);
        Assert.Equal(10, e.CurrentToken);
        Assert.Equal(["first"], (await log.ReadAsync("s1")).Select(m => m.Body));
        await log.AppendAsync("s1", 11, ["newer token is fine"]);
        Assert.Equal(2, (await log.ReadAsync("s1")).Count);
    }

    [Fact]
    public async Task A_legacy_string_log_is_migrated_to_a_list_on_first_touch()
    {
        var log = new MessageLog(fixture.Redis, _prefix);
        var db = fixture.Redis.GetDatabase();
        await db.StringSetAsync(Key("old"), """[{"text":"a"},{"text":"b"},"c"]""");

        var messages = await log.ReadAsync("old");

        Assert.Equal(["""{"text":"a"}""", """{"text":"b"}""", "\"c\""], messages.Select(m => m.Body));
        Assert.All(messages, m => Assert.Equal(0, m.Token));
        Assert.Equal(RedisType.List, await db.KeyTypeAsync(Key("old")));

        // An append that meets a legacy key migrates it first too.
        await db.StringSetAsync(Key("old2"), """["x"]""");
        await SetFenceAsync("old2", 3);
        Assert.Equal(2, await log.AppendAsync("old2", 3, ["y"]));
        Assert.Equal(["\"x\"", "y"], (await log.ReadAsync("old2")).Select(m => m.Body));
    }

    [Fact]
    public async Task A_legacy_value_that_is_not_a_json_array_fails_clearly_and_is_left_untouched()
    {
        var log = new MessageLog(fixture.Redis, _prefix);
        await fixture.Redis.GetDatabase().StringSetAsync(Key("broken"), "not json");

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => log.ReadAsync("broken"));

        Assert.Contains("not a JSON array", e.Message, StringComparison.Ordinal);
        Assert.Equal("not json", (string?)await fixture.Redis.GetDatabase().StringGetAsync(Key("broken")));
    }

    [Fact]
    public async Task A_corrupted_element_is_skipped_with_a_warning_and_the_rest_returned()
    {
        var collector = new FakeLogCollector();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(collector)));
        var log = new MessageLog(fixture.Redis, _prefix, loggerFactory: loggers);
        await SetFenceAsync("s1", 1);
        await log.AppendAsync("s1", 1, ["one"]);
        await fixture.Redis.GetDatabase().ListRightPushAsync(Key("s1"), "\u0001garbage{");
        await fixture.Redis.GetDatabase().ListRightPushAsync(Key("s1"), "{\"token\":1}");
        await log.AppendAsync("s1", 1, ["two"]);

        var messages = await log.ReadAsync("s1");

        Assert.Equal(["one", "two"], messages.Select(m => m.Body));
        var warnings = collector.GetSnapshot().Where(r => r.Level == LogLevel.Warning).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.All(warnings, w => Assert.Contains("session=s1", w.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Retention_trims_to_the_maximum_length_and_sets_the_ttl()
    {
        var log = new MessageLog(fixture.Redis, _prefix, new MessageLogOptions { MaxLength = 5, Ttl = TimeSpan.FromMinutes(10) });
        await SetFenceAsync("s1", 1);
        for (var i = 0; i < 8; i++)
        {
            await log.AppendAsync("s1", 1, [$"m{i}"]);
        }

        Assert.Equal(["m3", "m4", "m5", "m6", "m7"], (await log.ReadAsync("s1")).Select(m => m.Body));
        Assert.Equal(["m6", "m7"], (await log.ReadAsync("s1", tail: 2)).Select(m => m.Body));
        var ttl = await fixture.Redis.GetDatabase().KeyTimeToLiveAsync(Key("s1"));
        Assert.InRange(ttl!.Value, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));
    }

    [Fact]
    public async Task An_append_is_one_command_whatever_the_history_length()
    {
        await using var redis = await fixture.ConnectAsync();
        var log = new MessageLog(redis, _prefix, new MessageLogOptions { MaxLength = 100_000 });
        await SetFenceAsync("short", 1);
        await SetFenceAsync("long", 1);
        await log.AppendAsync("short", 1, ["warm the script cache"]);
        await fixture.Redis.GetDatabase().ListRightPushAsync(Key("long"), Enumerable.Range(0, 20_000).Select(i => (RedisValue)$"{{\"token\":1,\"body\":\"{i}\"}}").ToArray());

        int Count(Func<Task> append)
        {
            var session = new ProfilingSession();
            redis.RegisterProfiler(() => session);
            append().GetAwaiter().GetResult();
            return session.FinishProfiling().Count();
        }

        Assert.Equal(1, Count(() => log.AppendAsync("short", 1, ["x"])));
        Assert.Equal(1, Count(() => log.AppendAsync("long", 1, ["x"])));
    }

    [Fact]
    public async Task Redis_down_is_an_error_never_an_empty_result()
    {
        await using var server = await fixture.StartDedicatedAsync();
        await using var redis = await fixture.ConnectAsync(server.ConnectionString);
        var log = new MessageLog(redis, _prefix);
        await redis.GetDatabase().StringSetAsync($"{{{_prefix}}}:fence:s1", 1);
        await log.AppendAsync("s1", 1, ["before"]);
        await server.StopAsync();

        await Assert.ThrowsAnyAsync<RedisException>(() => log.ReadAsync("s1"));
        await Assert.ThrowsAnyAsync<RedisException>(() => log.AppendAsync("s1", 1, ["during"]));
    }

    [Theory]
    [InlineData("a{b}")]
    [InlineData("a:b")]
    [InlineData("")]
    [InlineData("sp ace")]
    public async Task Bad_session_ids_never_reach_a_key(string id)
    {
        var log = new MessageLog(fixture.Redis, _prefix);
        await Assert.ThrowsAnyAsync<ArgumentException>(() => log.AppendAsync(id, 1, ["x"]));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => log.ReadAsync(id));
    }

    [Fact]
    public void Invalid_options_fail_with_the_field_and_the_rule()
    {
        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => new MessageLog(fixture.Redis, _prefix, new MessageLogOptions { MaxLength = 0, Ttl = TimeSpan.Zero }));
        Assert.Contains("PollLease:Messages:MaxLength = 0 is invalid: it must be between 1 and 1000000.", e.Failures);
        Assert.Contains(e.Failures, f => f.StartsWith("PollLease:Messages:Ttl = 00:00:00 is invalid", StringComparison.Ordinal));
    }
}

public sealed class MessageLogTests_RedisServer(RedisServerFixture f) : MessageLogTests(f), IClassFixture<RedisServerFixture>;

public sealed class MessageLogTests_Garnet(GarnetFixture f) : MessageLogTests(f), IClassFixture<GarnetFixture>;
