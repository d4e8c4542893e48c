using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PollLease.Coordination;

namespace PollLease.Tests.Coordination;

public sealed class PollLeaseOptionsValidatorTests
{
    [Fact]
    public void Defaults_are_valid_and_match_the_documented_values()
    {
        var o = new PollLeaseOptions();
        Assert.Empty(PollLeaseOptionsValidator.GetFailures(o));
        Assert.Equal("poll", o.KeyPrefix);
        Assert.Equal(TimeSpan.FromSeconds(30), o.LeaseTtl);
        Assert.Equal(TimeSpan.FromSeconds(10), o.RenewInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), o.HeartbeatTtl);
        Assert.Equal(TimeSpan.FromSeconds(10), o.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(10), o.CycleInterval);
    }

    public static TheoryData<string, Action<PollLeaseOptions>, string> Rules() => new()
    {
        { "KeyPrefix", o => o.KeyPrefix = "", "PollLease:KeyPrefix = '' is invalid: it must be 1 to 32 characters of letters, digits, '.', '_' or '-'." },
        { "KeyPrefix", o => o.KeyPrefix = "a{b}", "PollLease:KeyPrefix = 'a{b}' is invalid" },
        { "KeyPrefix", o => o.KeyPrefix = "a:b", "PollLease:KeyPrefix = 'a:b' is invalid" },
        { "KeyPrefix", o => o.KeyPrefix = new string('p', 33), "must be 1 to 32 characters" },
        { "InstanceId", o => o.InstanceId = "a|b", "PollLease:InstanceId = 'a|b' is invalid: it must be empty (generated) or 1 to 128 characters" },
        { "InstanceId", o => o.InstanceId = "has space", "PollLease:InstanceId = 'has space' is invalid" },
        { "InstanceId", o => o.InstanceId = new string('i', 129), "PollLease:InstanceId = 'iii" },
        { "LeaseTtl", o => o.LeaseTtl = TimeSpan.Zero, "PollLease:LeaseTtl = 00:00:00 is invalid: it must be at least 50 ms." },
        { "RenewInterval", o => o.RenewInterval = TimeSpan.FromMilliseconds(-1), "PollLease:RenewInterval = -00:00:00.001 is invalid: it must be at least 50 ms." },
        { "RetryInterval", o => o.RetryInterval = TimeSpan.FromMilliseconds(49), "PollLease:RetryInterval = 00:00:00.049 is invalid: it must be at least 50 ms." },
        { "HeartbeatTtl", o => o.HeartbeatTtl = TimeSpan.Zero, "PollLease:HeartbeatTtl = 00:00:00 is invalid: it must be at least 50 ms." },
        { "HeartbeatInterval", o => o.HeartbeatInterval = TimeSpan.Zero, "PollLease:HeartbeatInterval = 00:00:00 is invalid: it must be at least 50 ms." },
        { "OperationTimeout", o => o.OperationTimeout = TimeSpan.Zero, "PollLease:OperationTimeout = 00:00:00 is invalid: it must be at least 50 ms." },
        { "ShutdownTimeout", o => o.ShutdownTimeout = TimeSpan.Zero, "PollLease:ShutdownTimeout = 00:00:00 is invalid: it must be at least 50 ms and less than 5 s" },
        { "SafetyMargin", o => o.SafetyMargin = TimeSpan.FromSeconds(-1), "PollLease:SafetyMargin = -00:00:01 is invalid: it must not be negative." },
        { "LeaseTtl", o => o.LeaseTtl = TimeSpan.FromSeconds(21), "PollLease:LeaseTtl = 00:00:21 is invalid: it must be at least 2 x RenewInterval + SafetyMargin (00:00:22), leaving room for one failed renew before the lease is given up." },
        { "RetryInterval", o => o.RetryInterval = TimeSpan.FromSeconds(11), "PollLease:RetryInterval = 00:00:11 is invalid: it must not exceed RenewInterval (00:00:10)" },
        { "HeartbeatTtl", o => o.HeartbeatTtl = TimeSpan.FromSeconds(19), "PollLease:HeartbeatTtl = 00:00:19 is invalid: it must be at least 2 x HeartbeatInterval (00:00:20)" },
        { "OperationTimeout", o => o.OperationTimeout = TimeSpan.FromSeconds(29), "PollLease:OperationTimeout = 00:00:29 is invalid: it must not exceed LeaseTtl - SafetyMargin (00:00:28)" },
        { "ShutdownTimeout", o => o.ShutdownTimeout = TimeSpan.FromSeconds(5), "PollLease:ShutdownTimeout = 00:00:05 is invalid: it must be at least 50 ms and less than 5 s, the grace the Azure Functions host gives a worker before killing it." },
        { "BalanceEpsilon", o => o.BalanceEpsilon = -0.5, "PollLease:BalanceEpsilon = -0.5 is invalid: it must be between 0 (exact balance) and 1." },
        { "BalanceEpsilon", o => o.BalanceEpsilon = double.NaN, "PollLease:BalanceEpsilon = NaN is invalid" },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void Every_rule_rejects_a_bad_value_with_one_message_naming_field_value_and_rule(string field, Action<PollLeaseOptions> breakIt, string expected)
    {
        var o = new PollLeaseOptions();
        breakIt(o);

        var failure = Assert.Single(PollLeaseOptionsValidator.GetFailures(o));

        Assert.Contains(expected, failure, StringComparison.Ordinal);
        Assert.StartsWith($"PollLease:{field} = ", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_or_missing_instance_id_is_valid_because_one_is_generated()
    {
        Assert.Empty(PollLeaseOptionsValidator.GetFailures(new PollLeaseOptions { InstanceId = null }));
        Assert.Empty(PollLeaseOptionsValidator.GetFailures(new PollLeaseOptions { InstanceId = "" }));
        Assert.Empty(PollLeaseOptionsValidator.GetFailures(new PollLeaseOptions { InstanceId = new string('i', 128), ShutdownTimeout = TimeSpan.FromMilliseconds(4999) }));
    }

    [Fact]
    public void Relationships_are_checked_only_once_every_value_is_in_range()
    {
        // RenewInterval out of range would also make RetryInterval (2 s > -1 ms) and LeaseTtl look wrong: only the
        // value that is wrong is reported. The other field rules are all reported at once.
        var o = new PollLeaseOptions
        {
            RenewInterval = TimeSpan.FromMilliseconds(-1),
            BalanceEpsilon = 2,
            ShutdownTimeout = TimeSpan.FromSeconds(6),
            HeartbeatTtl = TimeSpan.FromSeconds(1),
        };

        Assert.Equal(
            [
                "PollLease:RenewInterval = -00:00:00.001 is invalid: it must be at least 50 ms.",
                "PollLease:ShutdownTimeout = 00:00:06 is invalid: it must be at least 50 ms and less than 5 s, the grace the Azure Functions host gives a worker before killing it.",
                "PollLease:BalanceEpsilon = 2 is invalid: it must be between 0 (exact balance) and 1.",
            ],
            PollLeaseOptionsValidator.GetFailures(o));

        o.RenewInterval = TimeSpan.FromSeconds(10);
        o.BalanceEpsilon = 0;
        o.ShutdownTimeout = TimeSpan.FromSeconds(3);
        Assert.Equal(["PollLease:HeartbeatTtl = 00:00:01 is invalid: it must be at least 2 x HeartbeatInterval (00:00:20), so one missed heartbeat does not make a live instance look dead."], PollLeaseOptionsValidator.GetFailures(o));
    }

    [Fact]
    public void Lease_manager_constructor_refuses_invalid_options()
    {
        var o = new PollLeaseOptions { LeaseTtl = TimeSpan.FromSeconds(5) };
        var e = Assert.Throws<OptionsValidationException>(() => PollLeaseOptionsValidator.ThrowIfInvalid(o));
        Assert.Contains("PollLease:LeaseTtl = 00:00:05 is invalid", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_bind_from_configuration_with_timespan_strings()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PollLease:KeyPrefix"] = "fleet1",
            ["PollLease:LeaseTtl"] = "00:00:12",
            ["PollLease:RenewInterval"] = "00:00:04",
            ["PollLease:SafetyMargin"] = "00:00:01",
        }).Build();
        var o = config.GetSection(PollLeaseOptions.SectionName).Get<PollLeaseOptions>()!;

        Assert.Equal("fleet1", o.KeyPrefix);
        Assert.Equal(TimeSpan.FromSeconds(12), o.LeaseTtl);
        Assert.Equal(TimeSpan.FromSeconds(4), o.CycleInterval);
        Assert.Empty(PollLeaseOptionsValidator.GetFailures(o));
    }
}

public sealed class InstanceIdentityTests
{
    [Fact]
    public void Generated_ids_are_hostname_boot_ms_random_and_key_safe()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_795_534_315_114));
        var id = InstanceIdentity.Generate("Web Host{01}:x", time);
        var other = InstanceIdentity.Generate("Web Host{01}:x", time);

        Assert.Matches("^web-host-01--x-1795534315114-[0-9a-f]{6}$", id);
        Assert.NotEqual(id, other);
        Assert.True(KeySafety.IsSafe(id, KeySafety.MaxLength));
    }

    [Fact]
    public void A_configured_id_wins()
    {
        Assert.Equal("fixed-1", InstanceIdentity.Resolve("fixed-1", TimeProvider.System));
        Assert.StartsWith(KeySafety.Sanitize(Environment.MachineName.ToLowerInvariant(), 64), InstanceIdentity.Resolve(null, TimeProvider.System), StringComparison.Ordinal);
    }
}
