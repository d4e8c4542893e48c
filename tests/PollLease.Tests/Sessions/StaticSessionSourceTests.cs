using PollLease.Sessions;

namespace PollLease.Tests.Sessions;

public sealed class StaticSessionSourceTests
{
    private static readonly Dictionary<string, string> NoMetadata = new();

    private static PollSession Session(string id, double intervalSeconds = 10, bool paused = false) =>
        new(id, "https://example.com/" + id, TimeSpan.FromSeconds(intervalSeconds), paused, NoMetadata);

    [Fact]
    public async Task Returns_every_session_by_id_paused_included_and_the_same_dictionary_until_set()
    {
        var source = new StaticSessionSource([Session("a"), Session("b", paused: true)]);

        var first = await source.GetSessionsAsync("", CancellationToken.None);
        Assert.Equal(["a", "b"], first.Keys.Order(StringComparer.Ordinal));
        Assert.True(first["b"].Paused);
        Assert.Same(first, await source.GetSessionsAsync("7", CancellationToken.None));

        source.Set([Session("c", 4)]);
        var second = await source.GetSessionsAsync("7", CancellationToken.None);
        Assert.Equal(["c"], second.Keys);
        Assert.Equal(TimeSpan.FromSeconds(4), second["c"].Interval);
    }

    [Theory]
    [InlineData(3.999)]
    [InlineData(120.001)]
    [InlineData(0)]
    public void An_interval_outside_4_to_120_s_is_refused_naming_the_field_and_the_rule(double seconds)
    {
        var e = Assert.Throws<ArgumentException>(() => new StaticSessionSource([Session("a", seconds)]));

        Assert.Equal("interval", e.ParamName);
        Assert.Contains("between 4 and 120 s", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a:b")]
    [InlineData("{tag}")]
    [InlineData("with space")]
    public void An_invalid_id_is_refused_naming_the_field_and_the_rule(string id)
    {
        var e = Assert.Throws<ArgumentException>(() => StaticSessionSource.FromIds(["ok", id]));

        Assert.Equal("id", e.ParamName);
        Assert.Contains("letters, digits, '.', '_' or '-'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_duplicate_id_or_a_null_session_is_refused()
    {
        var twice = Assert.Throws<ArgumentException>(() => new StaticSessionSource([Session("a"), Session("a", 20)]));
        Assert.Contains("'a' appears twice", twice.Message, StringComparison.Ordinal);

        var nothing = Assert.Throws<ArgumentException>(() => new StaticSessionSource([Session("a"), null!]));
        Assert.Equal("sessions", nothing.ParamName);
    }

    [Fact]
    public async Task A_refused_set_keeps_the_current_sessions()
    {
        var source = StaticSessionSource.FromIds(["a"]);
        var before = await source.GetSessionsAsync("", CancellationToken.None);

        Assert.Throws<ArgumentException>(() => source.Set([Session("b"), Session("bad", 1)]));

        Assert.Same(before, await source.GetSessionsAsync("", CancellationToken.None));
    }

    [Fact]
    public async Task FromIds_makes_active_sessions_targeting_their_id_at_the_default_interval_unless_told_otherwise()
    {
        var plain = await StaticSessionSource.FromIds(["a", "b", "a"]).GetSessionsAsync("", CancellationToken.None);
        Assert.Equal(["a", "b"], plain.Keys.Order(StringComparer.Ordinal));
        Assert.All(plain.Values, s =>
        {
            Assert.Equal(s.Id, s.Target);
            Assert.Equal(StaticSessionSource.DefaultInterval, s.Interval);
            Assert.False(s.Paused);
            Assert.Empty(s.Metadata);
        });

        var told = await StaticSessionSource.FromIds(["a"], TimeSpan.FromSeconds(5), "record").GetSessionsAsync("", CancellationToken.None);
        Assert.Equal(("record", TimeSpan.FromSeconds(5)), (told["a"].Target, told["a"].Interval));
    }
}
