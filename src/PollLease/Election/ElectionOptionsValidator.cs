using Microsoft.Extensions.Options;
using PollLease.Coordination;

namespace PollLease.Election;

/// <summary>The rules on <see cref="ElectionOptions"/>' properties, one value each (generated from the attributes).</summary>
[OptionsValidator]
internal sealed partial class ElectionOptionsFieldRules : IValidateOptions<ElectionOptions>
{
}

/// <summary>
/// Validates <see cref="ElectionOptions"/>: each value against its own rule, then the timing relationships that make
/// the election safe: the leader must stop acting before its key can expire, and so before anyone else can be
/// elected. Each failure names the field, the value and the rule.
/// </summary>
internal sealed class ElectionOptionsValidator : IValidateOptions<ElectionOptions>
{
    /// <summary>Longest role name.</summary>
    public const int MaxRoleLength = 64;

    /// <summary>Share of the TTL the renew deadline may use at most (client-go: 10 s of 15 s); the rest is margin.</summary>
    public const double MaxRenewDeadlineShare = 0.9;

    /// <summary>Jitter applied to the retry period (client-go's JitterFactor).</summary>
    public const double RetryJitter = 0.2;

    private static readonly ElectionOptionsFieldRules Fields = new();

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ElectionOptions options) =>
        OptionRule.FieldsThenRelationships(Fields.Validate(name, options), Relationships(options));

    /// <summary>Throws <see cref="OptionsValidationException"/> listing every failure, when there are any.</summary>
    /// <param name="options">The options to check.</param>
    public static void ThrowIfInvalid(ElectionOptions options) => OptionRule.ThrowIfInvalid(new ElectionOptionsValidator(), options);

    /// <summary>Every rule <paramref name="options"/> breaks, one message each; empty when valid.</summary>
    /// <param name="options">The options to check.</param>
    public static IReadOnlyList<string> GetFailures(ElectionOptions options) => OptionRule.Failures(new ElectionOptionsValidator().Validate(null, options));

    private static IEnumerable<string> Relationships(ElectionOptions o)
    {
        const string S = ElectionOptions.Section;
        if (o.RenewDeadline > o.Ttl * MaxRenewDeadlineShare)
        {
            yield return OptionRule.Message(S, nameof(o.RenewDeadline), o.RenewDeadline, $"it must be at most 0.9 x Ttl ({OptionRule.Format(o.Ttl * MaxRenewDeadlineShare)}), so the leader stops acting before its key can expire and anyone else can be elected");
        }
        if (o.RenewDeadline < 2 * o.RenewInterval)
        {
            yield return OptionRule.Message(S, nameof(o.RenewDeadline), o.RenewDeadline, $"it must be at least 2 x RenewInterval ({OptionRule.Format(2 * o.RenewInterval)}), leaving room for one failed renew before the leader gives up");
        }
        if (o.RetryPeriod * (1 + RetryJitter) >= o.RenewDeadline)
        {
            yield return OptionRule.Message(S, nameof(o.RetryPeriod), o.RetryPeriod, $"with its 20% jitter it must stay below RenewDeadline ({OptionRule.Format(o.RenewDeadline)}), so a failed renew is retried before the deadline");
        }
        if (o.OperationTimeout > o.RenewDeadline - o.RenewInterval)
        {
            yield return OptionRule.Message(S, nameof(o.OperationTimeout), o.OperationTimeout, $"it must not exceed RenewDeadline - RenewInterval ({OptionRule.Format(o.RenewDeadline - o.RenewInterval)}), so a hung renew is abandoned in time for another attempt");
        }
        if (o.DisconnectGracePeriod > o.RenewDeadline)
        {
            yield return OptionRule.Message(S, nameof(o.DisconnectGracePeriod), o.DisconnectGracePeriod, $"it must not exceed RenewDeadline ({OptionRule.Format(o.RenewDeadline)}); a disconnected leader never acts longer than one that cannot renew");
        }
        if (o.MaxBackoff < o.RetryPeriod)
        {
            yield return OptionRule.Message(S, nameof(o.MaxBackoff), o.MaxBackoff, $"it must be at least RetryPeriod ({OptionRule.Format(o.RetryPeriod)})");
        }
    }
}
