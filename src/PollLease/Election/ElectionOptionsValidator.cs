using Microsoft.Extensions.Options;
using PollLease.Coordination;

namespace PollLease.Election;

/// <summary>
/// Validates <see cref="ElectionOptions"/>: each failure names the field, the value and the rule. The timing
/// relationships are what make the election safe: the leader must stop acting before its key can expire, and
/// so before anyone else can be elected.
/// </summary>
internal sealed class ElectionOptionsValidator : IValidateOptions<ElectionOptions>
{
    /// <summary>Longest role name.</summary>
    public const int MaxRoleLength = 64;

    /// <summary>Share of the TTL the renew deadline may use at most (client-go: 10 s of 15 s); the rest is margin.</summary>
    public const double MaxRenewDeadlineShare = 0.9;

    /// <summary>Jitter applied to the retry period (client-go's JitterFactor).</summary>
    public const double RetryJitter = 0.2;

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ElectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = GetFailures(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Throws <see cref="OptionsValidationException"/> listing every failure, when there are any.</summary>
    /// <param name="options">The options to check.</param>
    public static void ThrowIfInvalid(ElectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = GetFailures(options);
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ElectionOptions), failures);
        }
    }

    /// <summary>Every rule <paramref name="options"/> breaks, one message each; empty when valid.</summary>
    /// <param name="options">The options to check.</param>
    public static IReadOnlyList<string> GetFailures(ElectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var f = new List<string>();
        const string S = "Election";
        static string Fmt(TimeSpan t) => PollLeaseOptionsValidator.Fmt(t);

        if (!KeySafety.IsSafe(options.KeyPrefix, 32))
        {
            f.Add($"{S}:KeyPrefix = '{options.KeyPrefix}' is invalid: it must be 1 to 32 characters of letters, digits, '.', '_' or '-'.");
        }
        if (!KeySafety.IsSafe(options.Role, MaxRoleLength))
        {
            f.Add($"{S}:Role = '{options.Role}' is invalid: it must be 1 to {MaxRoleLength} characters of letters, digits, '.', '_' or '-'.");
        }
        if (string.IsNullOrEmpty(options.InstanceId))
        {
            f.Add($"{S}:InstanceId is invalid: it must not be empty.");
        }
        else if (!KeySafety.IsSafe(options.InstanceId, KeySafety.MaxLength))
        {
            f.Add($"{S}:InstanceId = '{options.InstanceId}' is invalid: it must be 1 to {KeySafety.MaxLength} characters of letters, digits, '.', '_' or '-'.");
        }

        var min = PollLeaseOptionsValidator.MinimumTiming;
        foreach (var (field, value) in new (string, TimeSpan)[]
        {
            (nameof(options.Ttl), options.Ttl), (nameof(options.RenewInterval), options.RenewInterval),
            (nameof(options.RenewDeadline), options.RenewDeadline), (nameof(options.RetryPeriod), options.RetryPeriod),
            (nameof(options.OperationTimeout), options.OperationTimeout), (nameof(options.DisconnectGracePeriod), options.DisconnectGracePeriod),
            (nameof(options.ValidationInterval), options.ValidationInterval), (nameof(options.MaxBackoff), options.MaxBackoff),
            (nameof(options.CircuitBreakDuration), options.CircuitBreakDuration), (nameof(options.CallbackTimeout), options.CallbackTimeout),
        })
        {
            if (value < min)
            {
                f.Add($"{S}:{field} = {Fmt(value)} is invalid: it must be at least {Fmt(min)}.");
            }
        }
        if (options.CircuitBreakerThreshold < 1)
        {
            f.Add($"{S}:CircuitBreakerThreshold = {options.CircuitBreakerThreshold} is invalid: it must be at least 1.");
        }
        if (options.HealthCheckFailureThreshold < 1)
        {
            f.Add($"{S}:HealthCheckFailureThreshold = {options.HealthCheckFailureThreshold} is invalid: it must be at least 1.");
        }
        if (f.Count > 0)
        {
            return f; // the relationships below are meaningless with out-of-range values
        }

        if (options.RenewDeadline > options.Ttl * MaxRenewDeadlineShare)
        {
            f.Add($"{S}:RenewDeadline = {Fmt(options.RenewDeadline)} is invalid: it must be at most 0.9 x Ttl ({Fmt(options.Ttl * MaxRenewDeadlineShare)}), so the leader stops acting before its key can expire and anyone else can be elected.");
        }
        if (options.RenewDeadline < 2 * options.RenewInterval)
        {
            f.Add($"{S}:RenewDeadline = {Fmt(options.RenewDeadline)} is invalid: it must be at least 2 x RenewInterval ({Fmt(2 * options.RenewInterval)}), leaving room for one failed renew before the leader gives up.");
        }
        if (options.RetryPeriod * (1 + RetryJitter) >= options.RenewDeadline)
        {
            f.Add($"{S}:RetryPeriod = {Fmt(options.RetryPeriod)} is invalid: with its 20% jitter it must stay below RenewDeadline ({Fmt(options.RenewDeadline)}), so a failed renew is retried before the deadline.");
        }
        if (options.OperationTimeout > options.RenewDeadline - options.RenewInterval)
        {
            f.Add($"{S}:OperationTimeout = {Fmt(options.OperationTimeout)} is invalid: it must not exceed RenewDeadline - RenewInterval ({Fmt(options.RenewDeadline - options.RenewInterval)}), so a hung renew is abandoned in time for another attempt.");
        }
        if (options.DisconnectGracePeriod > options.RenewDeadline)
        {
            f.Add($"{S}:DisconnectGracePeriod = {Fmt(options.DisconnectGracePeriod)} is invalid: it must not exceed RenewDeadline ({Fmt(options.RenewDeadline)}); a disconnected leader never acts longer than one that cannot renew.");
        }
        if (options.MaxBackoff < options.RetryPeriod)
        {
            f.Add($"{S}:MaxBackoff = {Fmt(options.MaxBackoff)} is invalid: it must be at least RetryPeriod ({Fmt(options.RetryPeriod)}).");
        }
        return f;
    }
}
