using Microsoft.Extensions.Options;

namespace PollLease.Messages;

/// <summary>Retention of the per-session message logs (configuration section <c>PollLease:Messages</c>).</summary>
public sealed class MessageLogOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "PollLease:Messages";

    /// <summary>Messages kept per session; older ones are trimmed on append. Default 1000, 1 to 1,000,000.</summary>
    public int MaxLength { get; set; } = 1000;

    /// <summary>A session's log expires this long after its last append. Default 7 days, 1 minute to 365 days.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromDays(7);
}

/// <summary>Validates <see cref="MessageLogOptions"/>: one message per broken rule naming the field, value and rule.</summary>
internal sealed class MessageLogOptionsValidator : IValidateOptions<MessageLogOptions>
{
    public ValidateOptionsResult Validate(string? name, MessageLogOptions options)
    {
        var failures = GetFailures(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    public static List<string> GetFailures(MessageLogOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var f = new List<string>();
        if (options.MaxLength is < 1 or > 1_000_000)
        {
            f.Add($"{MessageLogOptions.SectionName}:MaxLength = {options.MaxLength} is invalid: it must be between 1 and 1000000.");
        }
        if (options.Ttl < TimeSpan.FromMinutes(1) || options.Ttl > TimeSpan.FromDays(365))
        {
            f.Add($"{MessageLogOptions.SectionName}:Ttl = {options.Ttl} is invalid: it must be between 1 minute and 365 days.");
        }
        return f;
    }

    public static void ThrowIfInvalid(MessageLogOptions options)
    {
        var failures = GetFailures(options);
        if (failures.Count > 0)
        {
            throw new OptionsValidationException(MessageLogOptions.SectionName, typeof(MessageLogOptions), failures);
        }
    }
}
