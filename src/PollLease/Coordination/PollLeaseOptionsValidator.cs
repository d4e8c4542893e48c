using System.Globalization;
using Microsoft.Extensions.Options;

namespace PollLease.Coordination;

/// <summary>
/// Validates <see cref="PollLeaseOptions"/> the way client-go validates its leader-election timings: each
/// failure names the field, the value and the rule. Registered with <c>ValidateOnStart</c>, so a bad value
/// stops the host before it touches Redis.
/// </summary>
internal sealed class PollLeaseOptionsValidator : IValidateOptions<PollLeaseOptions>
{
    /// <summary>The smallest timing value accepted (tests and benchmarks scale timings down to this).</summary>
    public static readonly TimeSpan MinimumTiming = TimeSpan.FromMilliseconds(50);

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, PollLeaseOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = GetFailures(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Throws <see cref="OptionsValidationException"/> listing every failure, when there are any.</summary>
    /// <param name="options">The options to check.</param>
    public static void ThrowIfInvalid(PollLeaseOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = GetFailures(options);
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(PollLeaseOptions), failures);
        }
    }

    /// <summary>Every rule <paramref name="options"/> breaks, one message each; empty when valid.</summary>
    /// <param name="options">The options to check.</param>
    public static IReadOnlyList<string> GetFailures(PollLeaseOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var f = new List<string>();
        const string S = PollLeaseOptions.SectionName;

        if (!KeySafety.IsSafe(options.KeyPrefix, 32))
        {
            f.Add($"{S}:KeyPrefix = '{options.KeyPrefix}' is invalid: it must be 1 to 32 characters of letters, digits, '.', '_' or '-'.");
        }
        if (!string.IsNullOrEmpty(options.InstanceId) && !KeySafety.IsSafe(options.InstanceId, KeySafety.MaxLength))
        {
            f.Add($"{S}:InstanceId = '{options.InstanceId}' is invalid: it must be empty (generated) or 1 to {KeySafety.MaxLength} characters of letters, digits, '.', '_' or '-'.");
        }

        Positive(f, nameof(options.LeaseTtl), options.LeaseTtl);
        Positive(f, nameof(options.RenewInterval), options.RenewInterval);
        Positive(f, nameof(options.RetryInterval), options.RetryInterval);
        Positive(f, nameof(options.HeartbeatTtl), options.HeartbeatTtl);
        Positive(f, nameof(options.HeartbeatInterval), options.HeartbeatInterval);
        Positive(f, nameof(options.OperationTimeout), options.OperationTimeout);
        Positive(f, nameof(options.ShutdownTimeout), options.ShutdownTimeout);
        if (options.SafetyMargin < TimeSpan.Zero)
        {
            f.Add($"{S}:SafetyMargin = {Fmt(options.SafetyMargin)} is invalid: it must not be negative.");
        }
        if (f.Count > 0)
        {
            return f; // the relationships below are meaningless with out-of-range values
        }

        // Room for one failed renew: after a renew at t fails at t + RenewInterval, the next attempt at
        // t + 2 x RenewInterval must still land before the local validity deadline t + LeaseTtl - SafetyMargin.
        if (options.LeaseTtl < 2 * options.RenewInterval + options.SafetyMargin)
        {
            f.Add($"{S}:LeaseTtl = {Fmt(options.LeaseTtl)} is invalid: it must be at least 2 x RenewInterval + SafetyMargin ({Fmt(2 * options.RenewInterval + options.SafetyMargin)}), leaving room for one failed renew before the lease is given up.");
        }
        if (options.RetryInterval > options.RenewInterval)
        {
            f.Add($"{S}:RetryInterval = {Fmt(options.RetryInterval)} is invalid: it must not exceed RenewInterval ({Fmt(options.RenewInterval)}); a failed cycle is retried sooner than a normal one, not later.");
        }
        if (options.HeartbeatTtl < 2 * options.HeartbeatInterval)
        {
            f.Add($"{S}:HeartbeatTtl = {Fmt(options.HeartbeatTtl)} is invalid: it must be at least 2 x HeartbeatInterval ({Fmt(2 * options.HeartbeatInterval)}), so one missed heartbeat does not make a live instance look dead.");
        }
        if (options.OperationTimeout > options.LeaseTtl - options.SafetyMargin)
        {
            f.Add($"{S}:OperationTimeout = {Fmt(options.OperationTimeout)} is invalid: it must not exceed LeaseTtl - SafetyMargin ({Fmt(options.LeaseTtl - options.SafetyMargin)}), so a stuck call is abandoned while the lease is still valid.");
        }
        if (options.ShutdownTimeout >= TimeSpan.FromSeconds(5))
        {
            f.Add($"{S}:ShutdownTimeout = {Fmt(options.ShutdownTimeout)} is invalid: it must be less than 5 s, the grace the Azure Functions host gives a worker before killing it.");
        }
        if (double.IsNaN(options.BalanceEpsilon) || options.BalanceEpsilon < 0 || options.BalanceEpsilon > 1)
        {
            f.Add($"{S}:BalanceEpsilon = {options.BalanceEpsilon.ToString(System.Globalization.CultureInfo.InvariantCulture)} is invalid: it must be between 0 (exact balance) and 1.");
        }
        return f;
    }

    private static void Positive(List<string> failures, string field, TimeSpan value)
    {
        if (value < MinimumTiming)
        {
            failures.Add($"{PollLeaseOptions.SectionName}:{field} = {Fmt(value)} is invalid: it must be at least {Fmt(MinimumTiming)}.");
        }
    }

    internal static string Fmt(TimeSpan value) => Math.Abs(value.TotalSeconds) >= 1 && value.Milliseconds == 0
        ? value.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + " s"
        : value.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture) + " ms";
}
