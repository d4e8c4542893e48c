using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Election;

namespace PollLease.Fleet;

/// <summary>The rules on <see cref="JanitorOptions"/>' properties, its election's included (generated from the attributes).</summary>
[OptionsValidator]
internal sealed partial class JanitorOptionsFieldRules : IValidateOptions<JanitorOptions>
{
}

/// <summary>Validates <see cref="JanitorOptions"/> (and its election's timings) when the janitor is enabled.</summary>
internal sealed class JanitorOptionsValidator : IValidateOptions<JanitorOptions>
{
    private static readonly JanitorOptionsFieldRules Fields = new();

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, JanitorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Enabled ? Fields.Validate(name, options) : ValidateOptionsResult.Success;
    }

    /// <summary>Every rule <paramref name="options"/> breaks; empty when valid or disabled.</summary>
    /// <param name="options">The options to check.</param>
    public static IReadOnlyList<string> GetFailures(JanitorOptions options) => OptionRule.Failures(new JanitorOptionsValidator().Validate(null, options));
}

/// <summary>
/// The janitor's election, checked by <see cref="ElectionOptionsValidator"/>, with failures named by their configuration
/// path (<c>PollLease:Janitor:Election:Ttl</c>).
/// </summary>
internal sealed class JanitorElectionValidator : IValidateOptions<ElectionOptions>
{
    private const string Path = JanitorOptions.SectionName + ":";

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ElectionOptions options)
    {
        var failures = ElectionOptionsValidator.GetFailures(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures.Select(f => Path + f));
    }
}
