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

    [Fact]
    public async Task Start_reports_every_broken_section_at_once_not_only_the_first()
    {
        var settings = GenericTestHost.Settings("127.0.0.1:1,abortConnect=false,connectTimeout=50", "optval", "node-a");
        foreach (var rule in BrokenRules())
        {
            settings[(string)rule[0]] = (string)rule[1];
        }
        settings["PollLease:Polling:Tick"] = "00:00:05";
        using var host = GenericTestHost.Build(settings);

        // Fixing one setting per deployment to learn of the next would be slow: the host's start-up validation lists
        // them all (nothing of PollLease reads its options before it).
        var e = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync());

        var failures = (e is AggregateException all ? all.Flatten().InnerExceptions : [e])
            .SelectMany(x => Assert.IsType<OptionsValidationException>(x).Failures)
            .ToList();
        Assert.Equal(4, failures.Count);
        foreach (var rule in BrokenRules())
        {
            Assert.Contains((string)rule[2], failures);
        }
        Assert.Contains(failures, f => f.StartsWith("PollLease:Polling:Tick = 00:00:05 is invalid", StringComparison.Ordinal));
    }
}
