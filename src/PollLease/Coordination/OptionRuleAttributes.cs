using System.ComponentModel.DataAnnotations;
using System.Globalization;
using Microsoft.Extensions.Options;

namespace PollLease.Coordination;

/// <summary>
/// A range rule on an option, checked by the <see cref="OptionsValidatorAttribute"/> source generator. Its failure
/// names the option's configuration path, the value and the rule, like every rule of the library:
/// <c>PollLease:Polling:Tick = 00:00:05 is invalid: it must be between 10 ms and 4 s.</c> Bounds are invariant
/// strings (<c>int</c>, <c>double</c> or <c>TimeSpan</c>, as the property); a missing bound is open. NaN is out of
/// every range.
/// </summary>
/// <param name="section">The configuration section, e.g. <c>PollLease:Polling</c>.</param>
/// <param name="rule">The rule in words, e.g. <c>it must be between 1 and 10000</c>.</param>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class OptionRangeAttribute(string section, string rule) : ValidationAttribute
{
    public string Section { get; } = section;

    public string Rule { get; } = rule;

    /// <summary>The smallest valid value, or null for none.</summary>
    public string? Minimum { get; init; }

    /// <summary>The largest valid value, or null for none.</summary>
    public string? Maximum { get; init; }

    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
    {
        ArgumentNullException.ThrowIfNull(validationContext);
        return InRange(value) ? ValidationResult.Success : OptionRule.Failure(Section, validationContext.MemberName, value, Rule);
    }

    private bool InRange(object? value) => value switch
    {
        int i => (Minimum is null || i >= int.Parse(Minimum, CultureInfo.InvariantCulture)) && (Maximum is null || i <= int.Parse(Maximum, CultureInfo.InvariantCulture)),
        double d => !double.IsNaN(d) && (Minimum is null || d >= double.Parse(Minimum, CultureInfo.InvariantCulture)) && (Maximum is null || d <= double.Parse(Maximum, CultureInfo.InvariantCulture)),
        TimeSpan t => (Minimum is null || t >= TimeSpan.Parse(Minimum, CultureInfo.InvariantCulture)) && (Maximum is null || t <= TimeSpan.Parse(Maximum, CultureInfo.InvariantCulture)),
        _ => throw new InvalidOperationException($"OptionRange does not apply to {value?.GetType().Name ?? "null"}."),
    };
}

/// <summary>The failure every option rule reports: field, value and rule in one line, and no member prefix.</summary>
internal static class OptionRule
{
    public static ValidationResult Failure(string section, string? member, object? value, string rule) =>
        new(string.Create(CultureInfo.InvariantCulture, $"{section}:{member} = {value} is invalid: {rule}."));

    /// <summary>The failures of <paramref name="result"/> as a list (empty when it succeeded).</summary>
    public static List<string> Failures(ValidateOptionsResult result) => result.Failed ? [.. result.Failures ?? [result.FailureMessage]] : [];
}

/// <summary>An enum option must hold a defined value; the failure lists the names it may take.</summary>
/// <param name="section">The configuration section.</param>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class OptionDefinedAttribute(string section) : ValidationAttribute
{
    public string Section { get; } = section;

    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
    {
        ArgumentNullException.ThrowIfNull(validationContext);
        return value is Enum e && !Enum.IsDefined(e.GetType(), e)
            ? OptionRule.Failure(Section, validationContext.MemberName, Convert.ToInt64(e, CultureInfo.InvariantCulture), $"it must be one of {string.Join(", ", Enum.GetNames(e.GetType()))}")
            : ValidationResult.Success;
    }
}

/// <summary>Every entry of a host list must be a host name, an IP address or <c>*.domain</c>.</summary>
/// <param name="section">The configuration section.</param>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class OptionHostListAttribute(string section) : ValidationAttribute
{
    public string Section { get; } = section;

    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
    {
        ArgumentNullException.ThrowIfNull(validationContext);
        foreach (var host in value as IEnumerable<string> ?? [])
        {
            var name = host.StartsWith("*.", StringComparison.Ordinal) ? host[2..] : host;
            if (string.IsNullOrWhiteSpace(name) || Uri.CheckHostName(name) == UriHostNameType.Unknown)
            {
                return new ValidationResult($"{Section}:{validationContext.MemberName} entry '{host}' is invalid: it must be a host name, an IP address or *.domain.");
            }
        }
        return ValidationResult.Success;
    }
}
