using CsCheck;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using PollLease.Election;
using StackExchange.Redis;

namespace PollLease.Tests.Election;

public sealed class ElectionOptionsValidatorTests
{
    private static ElectionOptions Valid() => new() { Role = "janitor", InstanceId = "node-a" };

    [Fact]
    public void Defaults_are_valid_and_follow_client_go_ratios()
    {
        var o = Valid();
        Assert.Empty(ElectionOptionsValidator.GetFailures(o));
        Assert.Equal(TimeSpan.FromSeconds(15), o.Ttl);
        Assert.Equal(TimeSpan.FromSeconds(10), o.RenewDeadline);
        Assert.Equal(TimeSpan.FromSeconds(2), o.RetryPeriod);
        Assert.True(o.Ttl > o.RenewDeadline && o.RenewDeadline > 1.2 * o.RetryPeriod);
    }

    public static TheoryData<string, Action<ElectionOptions>, string> Rules() => new()
    {
        { "KeyPrefix", o => o.KeyPrefix = "", "Election:KeyPrefix = '' is invalid: it must be 1 to 32 characters of letters, digits, '.', '_' or '-'." },
        { "KeyPrefix", o => o.KeyPrefix = "a{b}", "Election:KeyPrefix = 'a{b}' is invalid" },
        { "Role", o => o.Role = "", "Election:Role = '' is invalid: it must be 1 to 64 characters" },
        { "Role", o => o.Role = "a:b", "Election:Role = 'a:b' is invalid" },
        { "Role", o => o.Role = "a|b", "Election:Role = 'a|b' is invalid" },
        { "Role", o => o.Role = new string('r', 65), "must be 1 to 64 characters" },
        { "InstanceId", o => o.InstanceId = "", "Election:InstanceId = '' is invalid: it must be 1 to 128 characters" },
        { "InstanceId", o => o.InstanceId = "has space", "Election:InstanceId = 'has space' is invalid" },
        { "InstanceId", o => o.InstanceId = new string('i', 129), "is invalid: it must be 1 to 128 characters" },
        { "KeyPrefix", o => o.KeyPrefix = null!, "Election:KeyPrefix = null is invalid" },
        { "Ttl", o => o.Ttl = TimeSpan.Zero, "Election:Ttl = 00:00:00 is invalid: it must be at least 50 ms." },
        { "RenewInterval", o => o.RenewInterval = TimeSpan.FromMilliseconds(-1), "Election:RenewInterval = -00:00:00.001 is invalid: it must be at least 50 ms." },
        { "RenewDeadline", o => o.RenewDeadline = TimeSpan.FromMilliseconds(10), "Election:RenewDeadline = 00:00:00.01 is invalid: it must be at least 50 ms." },
        { "RetryPeriod", o => o.RetryPeriod = TimeSpan.Zero, "Election:RetryPeriod = 00:00:00 is invalid: it must be at least 50 ms." },
        { "OperationTimeout", o => o.OperationTimeout = TimeSpan.Zero, "Election:OperationTimeout = 00:00:00 is invalid: it must be at least 50 ms." },
        { "DisconnectGracePeriod", o => o.DisconnectGracePeriod = TimeSpan.Zero, "Election:DisconnectGracePeriod = 00:00:00 is invalid: it must be at least 50 ms." },
        { "ValidationInterval", o => o.ValidationInterval = TimeSpan.Zero, "Election:ValidationInterval = 00:00:00 is invalid: it must be at least 50 ms." },
        { "MaxBackoff", o => o.MaxBackoff = TimeSpan.Zero, "Election:MaxBackoff = 00:00:00 is invalid: it must be at least 50 ms." },
        { "CircuitBreakDuration", o => o.CircuitBreakDuration = TimeSpan.Zero, "Election:CircuitBreakDuration = 00:00:00 is invalid: it must be at least 50 ms." },
        { "CallbackTimeout", o => o.CallbackTimeout = TimeSpan.Zero, "Election:CallbackTimeout = 00:00:00 is invalid: it must be at least 50 ms." },
        { "CircuitBreakerThreshold", o => o.CircuitBreakerThreshold = 0, "Election:CircuitBreakerThreshold = 0 is invalid: it must be at least 1." },
        { "HealthCheckFailureThreshold", o => o.HealthCheckFailureThreshold = 0, "Election:HealthCheckFailureThreshold = 0 is invalid: it must be at least 1." },
        { "RenewDeadline", o => o.RenewDeadline = TimeSpan.FromSeconds(14), "Election:RenewDeadline = 00:00:14 is invalid: it must be at most 0.9 x Ttl (00:00:13.5), so the leader stops acting before its key can expire" },
        { "RenewDeadline", o => { o.RenewInterval = TimeSpan.FromSeconds(6); o.OperationTimeout = TimeSpan.FromSeconds(1); }, "Election:RenewDeadline = 00:00:10 is invalid: it must be at least 2 x RenewInterval (00:00:12)" },
        { "RetryPeriod", o => o.RetryPeriod = TimeSpan.FromSeconds(9), "Election:RetryPeriod = 00:00:09 is invalid: with its 20% jitter it must stay below RenewDeadline (00:00:10)" },
        { "OperationTimeout", o => o.OperationTimeout = TimeSpan.FromSeconds(9), "Election:OperationTimeout = 00:00:09 is invalid: it must not exceed RenewDeadline - RenewInterval (00:00:08)" },
        { "DisconnectGracePeriod", o => o.DisconnectGracePeriod = TimeSpan.FromSeconds(11), "Election:DisconnectGracePeriod = 00:00:11 is invalid: it must not exceed RenewDeadline (00:00:10)" },
        { "MaxBackoff", o => o.MaxBackoff = TimeSpan.FromSeconds(1), "Election:MaxBackoff = 00:00:01 is invalid: it must be at least RetryPeriod (00:00:02)." },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void Every_rule_rejects_a_bad_value_with_one_message_naming_field_value_and_rule(string field, Action<ElectionOptions> breakIt, string expected)
    {
        var o = Valid();
        breakIt(o);

        var failure = Assert.Single(ElectionOptionsValidator.GetFailures(o));

        Assert.Contains(expected, failure, StringComparison.Ordinal);
        Assert.StartsWith($"Election:{field}", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void The_election_constructor_throws_the_validation_failures()
    {
        var o = Valid();
        o.InstanceId = "";
        using var redis = ConnectionMultiplexer.Connect("127.0.0.1:1,abortConnect=false,connectTimeout=50");

        var e = Assert.Throws<OptionsValidationException>(() => new LeaderElection(redis, o));

        Assert.Contains("Election:InstanceId = '' is invalid", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Backoff_doubles_per_failure_up_to_the_cap_with_equal_jitter()
    {
        var retry = TimeSpan.FromSeconds(1);
        var max = TimeSpan.FromSeconds(10);
        Assert.Equal(TimeSpan.FromMilliseconds(500), ElectionBackoff.Compute(1, retry, max, 0));
        Assert.Equal(TimeSpan.FromSeconds(1), ElectionBackoff.Compute(1, retry, max, 0.999999).RoundToMs());
        Assert.Equal(TimeSpan.FromSeconds(8), ElectionBackoff.Compute(4, retry, max, 0.999999).RoundToMs());
        Assert.Equal(TimeSpan.FromSeconds(10), ElectionBackoff.Compute(5, retry, max, 0.999999).RoundToMs());
        Assert.Equal(TimeSpan.FromSeconds(5), ElectionBackoff.Compute(1000, retry, max, 0));
        Gen.Select(Gen.Int[1, 100], Gen.Double[0, 0.999999]).Sample(t =>
        {
            var d = ElectionBackoff.Compute(t.Item1, retry, max, t.Item2);
            return d >= TimeSpan.FromMilliseconds(500) && d <= max;
        });
    }

    [Fact]
    public void Retry_jitter_stretches_by_at_most_a_fifth()
    {
        Assert.Equal(TimeSpan.FromSeconds(2), ElectionBackoff.Jittered(TimeSpan.FromSeconds(2), 0));
        Assert.Equal(TimeSpan.FromMilliseconds(2200), ElectionBackoff.Jittered(TimeSpan.FromSeconds(2), 0.5));
    }

    [Fact]
    public void Circuit_opens_after_the_threshold_half_opens_after_the_break_and_closes_on_success()
    {
        var time = new FakeTimeProvider();
        var breaker = new CircuitBreaker(3, TimeSpan.FromSeconds(10), time);

        Assert.False(breaker.RecordFailure());
        Assert.False(breaker.RecordFailure());
        Assert.False(breaker.IsOpen);
        Assert.True(breaker.RecordFailure());
        Assert.True(breaker.IsOpen);
        Assert.Equal(TimeSpan.FromSeconds(10), breaker.RemainingOpen);

        time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(breaker.IsOpen); // half-open: one trial
        Assert.True(breaker.RecordFailure()); // the trial failed: open again at once
        Assert.True(breaker.IsOpen);

        time.Advance(TimeSpan.FromSeconds(10));
        breaker.RecordSuccess();
        Assert.False(breaker.IsOpen);
        Assert.Equal(0, breaker.ConsecutiveFailures);
        Assert.False(breaker.RecordFailure());
    }
}

internal static class TimeSpanRounding
{
    public static TimeSpan RoundToMs(this TimeSpan t) => TimeSpan.FromMilliseconds(Math.Round(t.TotalMilliseconds));
}
