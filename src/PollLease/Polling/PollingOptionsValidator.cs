using Microsoft.Extensions.Options;
using PollLease.Sessions;

namespace PollLease.Polling;

/// <summary>Validates <see cref="PollingOptions"/>; each failure names the field, the value and the rule.</summary>
public sealed class PollingOptionsValidator : IValidateOptions<PollingOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, PollingOptions options)
    {
        var failures = GetFailures(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Every rule <paramref name="options"/> breaks, one message each.</summary>
    /// <param name="options">The options to check.</param>
    public static IReadOnlyList<string> GetFailures(PollingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var f = new List<string>();
        const string S = PollingOptions.SectionName;
        if (options.MaxConcurrency is < 1 or > 10_000)
        {
            f.Add($"{S}:MaxConcurrency = {options.MaxConcurrency} is invalid: it must be between 1 and 10000.");
        }
        if (options.PollTimeout < TimeSpan.FromMilliseconds(10))
        {
            f.Add($"{S}:PollTimeout = {options.PollTimeout} is invalid: it must be at least 10 ms.");
        }
        if (options.Tick < TimeSpan.FromMilliseconds(10) || options.Tick > TimeSpan.FromSeconds(4))
        {
            f.Add($"{S}:Tick = {options.Tick} is invalid: it must be between 10 ms and 4 s (the shortest poll interval).");
        }
        if (!Enum.IsDefined(options.PollTraceLevel))
        {
            f.Add($"{S}:PollTraceLevel = {(int)options.PollTraceLevel} is invalid: it must be one of {string.Join(", ", Enum.GetNames<Microsoft.Extensions.Logging.LogLevel>())}.");
        }
        if (double.IsNaN(options.Jitter) || options.Jitter is < 0 or > 1)
        {
            f.Add($"{S}:Jitter = {options.Jitter} is invalid: it must be between 0 and 1.");
        }
        if (options.DefaultInterval < PollSession.MinInterval || options.DefaultInterval > PollSession.MaxInterval)
        {
            f.Add($"{S}:DefaultInterval = {options.DefaultInterval} is invalid: it must be between 4 s and 120 s.");
        }
        return f;
    }
}
