using Microsoft.Extensions.Options;

namespace PollLease.Coordination;

/// <summary>The rules on <see cref="PollLeaseOptions"/>' properties, one value each (generated from the attributes).</summary>
[OptionsValidator]
internal sealed partial class PollLeaseOptionsFieldRules : IValidateOptions<PollLeaseOptions>
{
}

/// <summary>
/// Validates <see cref="PollLeaseOptions"/> the way client-go validates its leader-election timings: each value against
/// its own rule, then the timing relationships between them. Each failure names the field, the value and the rule.
/// Registered with <c>ValidateOnStart</c>, so a bad value stops the host before it touches Redis.
/// </summary>
internal sealed class PollLeaseOptionsValidator : IValidateOptions<PollLeaseOptions>
{
    private static readonly PollLeaseOptionsFieldRules Fields = new();

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, PollLeaseOptions options) =>
        OptionRule.FieldsThenRelationships(Fields.Validate(name, options), Relationships(options));

    /// <summary>Throws <see cref="OptionsValidationException"/> listing every failure, when there are any.</summary>
    /// <param name="options">The options to check.</param>
    public static void ThrowIfInvalid(PollLeaseOptions options) => OptionRule.ThrowIfInvalid(new PollLeaseOptionsValidator(), options);

    /// <summary>Every rule <paramref name="options"/> breaks, one message each; empty when valid.</summary>
    /// <param name="options">The options to check.</param>
    public static IReadOnlyList<string> GetFailures(PollLeaseOptions options) => OptionRule.Failures(new PollLeaseOptionsValidator().Validate(null, options));

    private static IEnumerable<string> Relationships(PollLeaseOptions o)
    {
        const string S = PollLeaseOptions.SectionName;
        // Room for one failed renew: after a renew at t fails at t + RenewInterval, the next attempt at
        // t + 2 x RenewInterval must still land before the local validity deadline t + LeaseTtl - SafetyMargin.
        if (o.LeaseTtl < 2 * o.RenewInterval + o.SafetyMargin)
        {
            yield return OptionRule.Message(S, nameof(o.LeaseTtl), o.LeaseTtl, $"it must be at least 2 x RenewInterval + SafetyMargin ({OptionRule.Format(2 * o.RenewInterval + o.SafetyMargin)}), leaving room for one failed renew before the lease is given up");
        }
        if (o.RetryInterval > o.RenewInterval)
        {
            yield return OptionRule.Message(S, nameof(o.RetryInterval), o.RetryInterval, $"it must not exceed RenewInterval ({OptionRule.Format(o.RenewInterval)}); a failed cycle is retried sooner than a normal one, not later");
        }
        if (o.HeartbeatTtl < 2 * o.HeartbeatInterval)
        {
            yield return OptionRule.Message(S, nameof(o.HeartbeatTtl), o.HeartbeatTtl, $"it must be at least 2 x HeartbeatInterval ({OptionRule.Format(2 * o.HeartbeatInterval)}), so one missed heartbeat does not make a live instance look dead");
        }
        if (o.OperationTimeout > o.LeaseTtl - o.SafetyMargin)
        {
            yield return OptionRule.Message(S, nameof(o.OperationTimeout), o.OperationTimeout, $"it must not exceed LeaseTtl - SafetyMargin ({OptionRule.Format(o.LeaseTtl - o.SafetyMargin)}), so a stuck call is abandoned while the lease is still valid");
        }
    }
}
