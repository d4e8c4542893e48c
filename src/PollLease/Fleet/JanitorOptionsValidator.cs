using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Election;

namespace PollLease.Fleet;

/// <summary>Validates <see cref="JanitorOptions"/> (and its election's timings) when the janitor is enabled.</summary>
internal sealed class JanitorOptionsValidator : IValidateOptions<JanitorOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, JanitorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = GetFailures(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Every rule <paramref name="options"/> breaks; empty when valid or disabled.</summary>
    /// <param name="options">The options to check.</param>
    public static IReadOnlyList<string> GetFailures(JanitorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var f = new List<string>();
        if (!options.Enabled)
        {
            return f;
        }
        const string S = JanitorOptions.SectionName;
        if (options.Interval < PollLeaseOptionsValidator.MinimumTiming)
        {
            f.Add($"{S}:Interval = {PollLeaseOptionsValidator.Fmt(options.Interval)} is invalid: it must be at least {PollLeaseOptionsValidator.Fmt(PollLeaseOptionsValidator.MinimumTiming)}.");
        }
        if (options.ScanPageSize is < 10 or > 10_000)
        {
            f.Add($"{S}:ScanPageSize = {options.ScanPageSize} is invalid: it must be between 10 and 10000.");
        }
        if (options.Election is null)
        {
            f.Add($"{S}:Election is invalid: it must not be null.");
        }
        else
        {
            f.AddRange(ElectionOptionsValidator.GetFailures(options.Election).Select(m => S + ":" + m));
        }
        return f;
    }
}
