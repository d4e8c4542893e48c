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

    /// <summary>True when <see cref="Maximum"/> itself is out of range (a value must stay below it).</summary>
    public bool MaximumIsExclusive { get; init; }

    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
    {
        ArgumentNullException.ThrowIfNull(validationContext);
        return InRange(value) ? ValidationResult.Success : OptionRule.Failure(Section, validationContext.MemberName, value, Rule);
    }

    private bool InRange(object? value) => value switch
    {
        int i => Within(i, s => int.Parse(s, CultureInfo.InvariantCulture)),
        double d => !double.IsNaN(d) && Within(d, s => double.Parse(s, CultureInfo.InvariantCulture)),
        TimeSpan t => Within(t, s => TimeSpan.Parse(s, CultureInfo.InvariantCulture)),
        _ => throw new InvalidOperationException($"OptionRange does not apply to {value?.GetType().Name ?? "null"}."),
    };

    private bool Within<T>(T value, Func<string, T> parse) where T : IComparable<T> =>
        (Minimum is null || value.CompareTo(parse(Minimum)) >= 0)
        && (Maximum is null || (MaximumIsExclusive ? value.CompareTo(parse(Maximum)) < 0 : value.CompareTo(parse(Maximum)) <= 0));
}

/// <summary>
/// How every option rule reports a failure: the field's configuration path, its value and the rule in one line, and no
/// member prefix. Values print the way configuration writes them: a <see cref="TimeSpan"/> as <c>00:00:05</c> or
/// <c>00:00:00.05</c> (what <c>TimeSpan.Parse</c> reads back), a string in quotes, a number in the invariant culture.
/// </summary>
internal static class OptionRule
{
    /// <summary>The smallest timing value accepted by the lease, election and janitor options (tests and benchmarks scale timings down to it).</summary>
    public const string MinimumTiming = "00:00:00.050";

    /// <summary>The rule of <see cref="MinimumTiming"/> in words.</summary>
    public const string AtLeastMinimumTiming = "it must be at least 50 ms";

    public static string Message(string section, string? member, object? value, string rule) =>
        $"{section}:{member} = {Format(value)} is invalid: {rule}.";

    public static ValidationResult Failure(string section, string? member, object? value, string rule) => new(Message(section, member, value, rule));

    /// <summary>A value as the failures print it (see the type's summary).</summary>
    public static string Format(object? value) => value switch
    {
        null => "null",
        string s => $"'{s}'",
        TimeSpan t when t.Ticks % TimeSpan.TicksPerSecond != 0 => t.ToString("c", CultureInfo.InvariantCulture).TrimEnd('0'),
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>
    /// The generated field rules' result, or, when every field is valid, the relationships between fields: those compare
    /// values that mean nothing out of range (a negative interval would make a valid neighbour look wrong).
    /// </summary>
    /// <param name="fields">The generated validator's result.</param>
    /// <param name="relationships">The failed relationships, one message each; enumerated only when the fields are valid.</param>
    public static ValidateOptionsResult FieldsThenRelationships(ValidateOptionsResult fields, IEnumerable<string> relationships)
    {
        if (fields.Failed)
        {
            return fields;
        }
        var failures = relationships.ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>The failures of <paramref name="result"/> as a list (empty when it succeeded).</summary>
    public static List<string> Failures(ValidateOptionsResult result) => result.Failed ? [.. result.Failures ?? [result.FailureMessage]] : [];

    /// <summary>
    /// For types that validate their options outside dependency injection (a constructor): throws what
    /// <c>ValidateOnStart</c> would, an <see cref="OptionsValidationException"/> listing every failure.
    /// </summary>
    public static void ThrowIfInvalid<TOptions>(IValidateOptions<TOptions> validator, TOptions options, string name = "")
        where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = Failures(validator.Validate(name, options));
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(name, typeof(TOptions), failures);
        }
    }
}

/// <summary>
/// A string that becomes part of a Redis key or a lease value (see <see cref="KeySafety"/>): 1 to
/// <see cref="MaxLength"/> letters, digits, '.', '_' or '-'.
/// </summary>
/// <param name="section">The configuration section.</param>
/// <param name="maxLength">The longest value accepted.</param>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class OptionKeyAttribute(string section, int maxLength) : ValidationAttribute
{
    public string Section { get; } = section;

    public int MaxLength { get; } = maxLength;

    /// <summary>Also accept null or empty, which means the library generates the value.</summary>
    public bool GeneratedWhenEmpty { get; init; }

    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
    {
        ArgumentNullException.ThrowIfNull(validationContext);
        var s = value as string;
        if ((GeneratedWhenEmpty && string.IsNullOrEmpty(s)) || KeySafety.IsSafe(s, MaxLength))
        {
            return ValidationResult.Success;
        }
        var rule = $"1 to {MaxLength} characters of letters, digits, '.', '_' or '-'";
        return OptionRule.Failure(Section, validationContext.MemberName, s, GeneratedWhenEmpty ? $"it must be empty (generated) or {rule}" : $"it must be {rule}");
    }
}

/// <summary>An option that must be set (not null); unlike <see cref="RequiredAttribute"/>, its failure names the configuration path.</summary>
/// <param name="section">The configuration section.</param>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class OptionRequiredAttribute(string section) : ValidationAttribute
{
    public string Section { get; } = section;

    protected override ValidationResult? IsValid(object? value, ValidationContext validationContext)
    {
        ArgumentNullException.ThrowIfNull(validationContext);
        return value is null ? OptionRule.Failure(Section, validationContext.MemberName, value, "it must be set") : ValidationResult.Success;
    }
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
