using PollLease.Coordination;

namespace PollLease.Polling;

/// <summary>
/// Settings of the per-instance poll scheduler, bound from <c>PollLease:Polling</c>. Validated at start-up by
/// <see cref="PollingOptionsValidator"/>.
/// </summary>
public sealed class PollingOptions
{
    /// <summary>The configuration section these options are bound from.</summary>
    public const string SectionName = "PollLease:Polling";

    /// <summary>How many polls may run at once in one instance. Default 16.</summary>
    [OptionRange(SectionName, "it must be between 1 and 10000", Minimum = "1", Maximum = "10000")]
    public int MaxConcurrency { get; set; } = 16;

    /// <summary>
    /// Upper bound of one poll. A poll is also cancelled before its lease's local validity deadline, whichever
    /// comes first. Default 30 s.
    /// </summary>
    [OptionRange(SectionName, "it must be at least 10 ms", Minimum = "00:00:00.010")]
    public TimeSpan PollTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the scheduler looks for due sessions. Default 250 ms.</summary>
    [OptionRange(SectionName, "it must be between 10 ms and 4 s (the shortest poll interval)", Minimum = "00:00:00.010", Maximum = "00:00:04")]
    public TimeSpan Tick { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Fraction of a session's interval used as random jitter for its first poll after the lease is acquired, so
    /// sessions taken over together do not all poll in the same instant. 0 to 1; default 0.1.
    /// </summary>
    [OptionRange(SectionName, "it must be between 0 and 1", Minimum = "0", Maximum = "1")]
    public double Jitter { get; set; } = 0.1;

    /// <summary>
    /// Check ownership against Redis (one round trip) before every poll, not only against the local lease state,
    /// for handlers whose side effects must not run twice even briefly. Sessions whose metadata has <c>critical=true</c> are always checked. Default false.
    /// </summary>
    public bool StrictOwnershipCheck { get; set; }

    /// <summary>
    /// Level of the one trace line per poll start (<c>Poll started: instance=... endpoint=... token=...</c>). Default
    /// Information, so a local run shows who polls what; the Azure Functions app sets Debug, because each line becomes
    /// one billed Application Insights trace per poll per session. Failures and lease changes have their own levels.
    /// </summary>
    [OptionDefined(SectionName)]
    public Microsoft.Extensions.Logging.LogLevel PollTraceLevel { get; set; } = Microsoft.Extensions.Logging.LogLevel.Information;

    /// <summary>Default poll interval for sessions added without one. 4 to 120 s; default 30 s.</summary>
    [OptionRange(SectionName, "it must be between 4 s and 120 s", Minimum = "00:00:04", Maximum = "00:02:00")]
    public TimeSpan DefaultInterval { get; set; } = TimeSpan.FromSeconds(30);
}
