using PollLease.Sessions;

namespace PollLease.Tests.Coordination;

public sealed class SessionIdsTests
{
    [Theory]
    [InlineData("session-000123")]
    [InlineData("A.b_c-9")]
    public void Accepts_key_safe_ids(string id) => Assert.True(SessionIds.IsValid(id));

    [Theory]
    [InlineData("")]
    [InlineData("a{b}")]
    [InlineData("a:b")]
    [InlineData("a b")]
    [InlineData("a|b")]
    [InlineData("a,b")]
    [InlineData("tab\there")]
    [InlineData("nul\0")]
    [InlineData("é")]
    public void Rejects_ids_that_could_split_or_tag_a_key(string id)
    {
        Assert.False(SessionIds.IsValid(id));
        var e = Assert.Throws<ArgumentException>(() => SessionIds.Validate(id, nameof(id)));
        Assert.Equal("id", e.ParamName);
        Assert.Contains("must be 1 to 128 characters of letters, digits, '.', '_' or '-'", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("\0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rejects_null_and_oversized_ids_with_a_short_message()
    {
        Assert.Throws<ArgumentException>(() => SessionIds.Validate(null));
        var e = Assert.Throws<ArgumentException>(() => SessionIds.Validate(new string('x', 10_240)));
        Assert.Contains("(10240 characters)", e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Length < 300);
        Assert.True(SessionIds.IsValid(new string('x', 128)));
        Assert.False(SessionIds.IsValid(new string('x', 129)));
    }
}
