using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using PollLease.Coordination;
using PollLease.Sessions;

namespace PollLease.Tests.Coordination;

/// <summary>How a lease manager turns its session source's answer into what it plans with and what its poll loop polls.</summary>
public sealed class ActiveSessionsTests
{
    private static readonly Dictionary<string, string> NoMetadata = new();

    private static PollSession Session(string id, double intervalSeconds = 10, bool paused = false) =>
        new(id, "record", TimeSpan.FromSeconds(intervalSeconds), paused, NoMetadata);

    private static Dictionary<string, PollSession> Answer(params PollSession[] sessions) =>
        sessions.ToDictionary(s => s.Id, StringComparer.Ordinal);

    [Fact]
    public async Task The_active_set_leaves_paused_sessions_out_and_is_rebuilt_only_when_the_answer_changes()
    {
        var source = new SettableSource(Answer(Session("a"), Session("b", paused: true), Session("c")));
        var sessions = new ActiveSessions(source, NullLogger.Instance);

        var first = await sessions.RefreshAsync("1", CancellationToken.None);
        Assert.Equal(["a", "c"], first.Order(StringComparer.Ordinal));
        Assert.Same(first, sessions.Current);
        Assert.Equal(3, sessions.All.Count);
        Assert.Same(source.Answer, sessions.All);

        Assert.Same(first, await sessions.RefreshAsync("1", CancellationToken.None));

        source.Answer = Answer(Session("a"), Session("b"));
        var second = await sessions.RefreshAsync("2", CancellationToken.None);
        Assert.NotSame(first, second);
        Assert.Equal(["a", "b"], second.Order(StringComparer.Ordinal));
        Assert.Equal(["1", "1", "2"], source.Versions);
    }

    [Fact]
    public async Task Entries_that_cannot_be_leased_or_polled_safely_are_skipped_and_logged()
    {
        var collector = new FakeLogCollector();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(collector)));
        var answer = new Dictionary<string, PollSession>(StringComparer.Ordinal)
        {
            ["good"] = Session("good"),
            ["a:b"] = Session("a:b"),
            ["key"] = Session("other"),
            ["fast"] = Session("fast", 0.05),
            ["empty"] = null!,
        };
        var sessions = new ActiveSessions(new SettableSource(answer), loggers.CreateLogger("test"));

        var active = await sessions.RefreshAsync("", CancellationToken.None);

        Assert.Equal(["good"], active);
        Assert.Equal(["good"], sessions.All.Keys);
        var warnings = collector.GetSnapshot().Where(r => r.Level == LogLevel.Warning).Select(r => r.Message).ToList();
        Assert.Equal(4, warnings.Count);
        Assert.Contains(warnings, m => m.Contains("session=a:b", StringComparison.Ordinal) && m.Contains("not a valid session id", StringComparison.Ordinal));
        Assert.Contains(warnings, m => m.Contains("session=key", StringComparison.Ordinal) && m.Contains("differs from its key", StringComparison.Ordinal));
        Assert.Contains(warnings, m => m.Contains("session=fast", StringComparison.Ordinal) && m.Contains("interval 0.05 s is outside 4-120 s", StringComparison.Ordinal));
        Assert.Contains(warnings, m => m.Contains("session=empty", StringComparison.Ordinal) && m.Contains("null", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failing_or_null_answer_throws_and_keeps_the_previous_sessions()
    {
        var source = new SettableSource(Answer(Session("a")));
        var sessions = new ActiveSessions(source, NullLogger.Instance);
        var before = await sessions.RefreshAsync("", CancellationToken.None);

        source.Failure = new TimeoutException("database down");
        await Assert.ThrowsAsync<TimeoutException>(() => sessions.RefreshAsync("", CancellationToken.None).AsTask());
        source.Failure = null;
        source.Answer = null!;
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => sessions.RefreshAsync("", CancellationToken.None).AsTask());
        Assert.Contains("returned null", e.Message, StringComparison.Ordinal);

        Assert.Same(before, sessions.Current);
        Assert.Equal(["a"], sessions.All.Keys);
    }

    private sealed class SettableSource(IReadOnlyDictionary<string, PollSession> answer) : ISessionSource
    {
        public IReadOnlyDictionary<string, PollSession> Answer { get; set; } = answer;

        public Exception? Failure { get; set; }

        public List<string> Versions { get; } = [];

        public ValueTask<IReadOnlyDictionary<string, PollSession>> GetSessionsAsync(string catalogVersion, CancellationToken cancellationToken)
        {
            Versions.Add(catalogVersion);
            return Failure is { } failure ? ValueTask.FromException<IReadOnlyDictionary<string, PollSession>>(failure) : ValueTask.FromResult(Answer);
        }
    }
}
