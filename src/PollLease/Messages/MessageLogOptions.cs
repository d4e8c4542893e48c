using Microsoft.Extensions.Options;
using PollLease.Coordination;

namespace PollLease.Messages;

/// <summary>Retention of the per-session message logs (configuration section <c>PollLease:Messages</c>).</summary>
public sealed class MessageLogOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "PollLease:Messages";

    /// <summary>Messages kept per session; older ones are trimmed on append. Default 1000, 1 to 1,000,000.</summary>
    [OptionRange(SectionName, "it must be between 1 and 1000000", Minimum = "1", Maximum = "1000000")]
    public int MaxLength { get; set; } = 1000;

    /// <summary>A session's log expires this long after its last append. Default 7 days, 1 minute to 365 days.</summary>
    [OptionRange(SectionName, "it must be between 1 minute and 365 days", Minimum = "00:01:00", Maximum = "365.00:00:00")]
    public TimeSpan Ttl { get; set; } = TimeSpan.FromDays(7);
}

/// <summary>Validates <see cref="MessageLogOptions"/> (generated from its rules): one message per broken rule naming the field, value and rule.</summary>
[OptionsValidator]
internal sealed partial class MessageLogOptionsValidator : IValidateOptions<MessageLogOptions>
{
    public static List<string> GetFailures(MessageLogOptions options) => OptionRule.Failures(new MessageLogOptionsValidator().Validate(null, options));

    public static void ThrowIfInvalid(MessageLogOptions options) => OptionRule.ThrowIfInvalid(new MessageLogOptionsValidator(), options, MessageLogOptions.SectionName);
}
