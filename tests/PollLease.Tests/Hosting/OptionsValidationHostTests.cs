using Microsoft.Extensions.Options;

namespace PollLease.Tests.Hosting;

/// <summary>Invalid options stop the Generic Host at start-up (ValidateOnStart), before anything touches Redis.</summary>
public sealed class OptionsValidationHostTests
{
    public static TheoryData<string, string, string> BrokenRules() => new()
    {
        // LeaseTtl 3 s - SafetyMargin 0.5 s (the test host's timings) leaves 2.5 s.
        {
            "PollLease:OperationTimeout", "00:00:03",
            "PollLease:OperationTimeout = 00:00:03 is invalid: it must not exceed LeaseTtl - SafetyMargin (00:00:02.5), so a stuck call is abandoned while the lease is still valid."
        },
        { "PollLease:Janitor:ScanPageSize", "1", "PollLease:Janitor:ScanPageSize = 1 is invalid: it must be between 10 and 10000." },
        {
            "PollLease:Janitor:Election:RenewDeadline", "00:00:20",
            "PollLease:Janitor:Election:RenewDeadline = 00:00:20 is invalid: it must be at most 0.9 x Ttl (00:00:13.5), so the leader stops acting before its key can expire and anyone else can be elected."
        },
    };

    [Theory]
    [MemberData(nameof(BrokenRules))]
    public async Task Start_fails_with_the_broken_rule_of_the_lease_janitor_or_election_options(string key, string value, string expected)
    {
        // Nothing listens on port 1: the host must fail on its options, not on the connection.
        var settings = GenericTestHost.Settings("127.0.0.1:1,abortConnect=false,connectTimeout=50", "optval", "node-a");
        settings[key] = value;
        using var host = GenericTestHost.Build(settings);

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Equal([expected], e.Failures);
        Assert.Equal(expected, e.Message);
    }
}
