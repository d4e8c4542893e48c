using PollLease.Assignment;

namespace PollLease.Tests.Assignment;

public sealed class PublishedAssignmentTests
{
    [Fact]
    public void Serialize_then_parse_round_trips_the_owners()
    {
        var owners = BalancedAssignment.Compute(["vm-a", "vm-b", "vm-c"], Enumerable.Range(0, 50).Select(i => $"s-{i}")).Owners;
        var parsed = PublishedAssignment.Parse(7, PublishedAssignment.Serialize(owners), out var error);
        Assert.Null(error);
        Assert.Equal(7, parsed!.Version);
        Assert.Equal(owners.OrderBy(kv => kv.Key), parsed.Owners.OrderBy(kv => kv.Key));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("{\"nodes\":[\"a\"]}")]
    [InlineData("{\"nodes\":[1],\"owners\":{}}")]
    [InlineData("{\"nodes\":[\"a\"],\"owners\":{\"s\":1}}")]
    [InlineData("{\"nodes\":[\"a\"],\"owners\":{\"s\":\"a\"}}")]
    [InlineData("{\"nodes\":[\"a\"],\"owners\":{\"s\":-1}}")]
    public void Malformed_values_are_rejected_with_a_reason(string json)
    {
        Assert.Null(PublishedAssignment.Parse(1, json, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }
}
