using Microsoft.Extensions.Options;
using PollLease.Coordination;

namespace PollLease.Polling;

/// <summary>Validates <see cref="PollingOptions"/> (generated from its rules); each failure names the field, the value and the rule.</summary>
[OptionsValidator]
internal sealed partial class PollingOptionsValidator : IValidateOptions<PollingOptions>
{
    /// <summary>Every rule <paramref name="options"/> breaks, one message each.</summary>
    /// <param name="options">The options to check.</param>
    public static IReadOnlyList<string> GetFailures(PollingOptions options) => OptionRule.Failures(new PollingOptionsValidator().Validate(null, options));
}
