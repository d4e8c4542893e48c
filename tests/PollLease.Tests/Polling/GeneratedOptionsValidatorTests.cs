using Microsoft.Extensions.Logging;
using PollLease.Messages;
using PollLease.Polling;

namespace PollLease.Tests.Polling;

/// <summary>The validators generated from the options' rules: one message per broken rule, naming field, value and rule.</summary>
public sealed class GeneratedOptionsValidatorTests
{
    [Fact]
    public void Defaults_are_valid()
    {
        Assert.Empty(PollingOptionsValidator.GetFailures(new PollingOptions()));
        Assert.Empty(HttpPollOptionsValidator.GetFailures(new HttpPollOptions()));
        Assert.Empty(MessageLogOptionsValidator.GetFailures(new MessageLogOptions()));
    }

    [Fact]
    public void Polling_rules_name_the_field_the_value_and_the_rule()
    {
        var failures = PollingOptionsValidator.GetFailures(new PollingOptions
        {
            MaxConcurrency = 0,
            PollTimeout = TimeSpan.FromMilliseconds(5),
            Tick = TimeSpan.FromSeconds(5),
            Jitter = double.NaN,
            DefaultInterval = TimeSpan.FromSeconds(121),
            PollTraceLevel = (LogLevel)42,
        });
        string[] expected =
        [
            "PollLease:Polling:MaxConcurrency = 0 is invalid: it must be between 1 and 10000.",
            "PollLease:Polling:PollTimeout = 00:00:00.005 is invalid: it must be at least 10 ms.",
            "PollLease:Polling:Tick = 00:00:05 is invalid: it must be between 10 ms and 4 s (the shortest poll interval).",
            "PollLease:Polling:Jitter = NaN is invalid: it must be between 0 and 1.",
            "PollLease:Polling:DefaultInterval = 00:02:01 is invalid: it must be between 4 s and 120 s.",
            "PollLease:Polling:PollTraceLevel = 42 is invalid: it must be one of Trace, Debug, Information, Warning, Error, Critical, None.",
        ];
        Assert.Equal(expected.Order(StringComparer.Ordinal), failures.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Http_rules_include_each_bad_host_entry()
    {
        var options = new HttpPollOptions { MaxRedirects = 11 };
        options.AllowedHosts.Add("ok.example.com");
        options.AllowedHosts.Add("bad host");
        var failures = HttpPollOptionsValidator.GetFailures(options);
        Assert.Contains("PollLease:Http:MaxRedirects = 11 is invalid: it must be between 0 and 10.", failures);
        Assert.Contains("PollLease:Http:AllowedHosts entry 'bad host' is invalid: it must be a host name, an IP address or *.domain.", failures);
        Assert.Equal(2, failures.Count);
    }
}
