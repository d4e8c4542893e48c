namespace PollLease.Coordination;

/// <summary>
/// Settings of one PollLease instance: key layout, lease and heartbeat timing, Redis connection.
/// Bound from the <c>PollLease</c> configuration section and validated once at start-up by
/// <see cref="PollLeaseOptionsValidator"/>: each value by the rule on its property, and the timing relationships
/// between them by the validator itself.
/// </summary>
public sealed class PollLeaseOptions
{
    /// <summary>The configuration section these options are bound from.</summary>
    public const string SectionName = "PollLease";

    /// <summary>
    /// Prefix of every Redis key; it is wrapped in braces (<c>{poll}</c>) so that all keys share one hash
    /// slot and the multi-key scripts run on Redis Cluster and Azure Managed Redis. Letters, digits,
    /// <c>.</c>, <c>_</c> and <c>-</c>, 1 to 32 characters. Two fleets with different prefixes never see each other.
    /// </summary>
    [OptionKey(SectionName, 32)]
    public string KeyPrefix { get; set; } = "poll";

    /// <summary>
    /// This instance's id. Empty (the default) generates <c>hostname-bootUnixMs-random</c>; a configured
    /// value must be unique among live instances. Letters, digits, <c>.</c>, <c>_</c> and <c>-</c>, at most 128 characters.
    /// </summary>
    [OptionKey(SectionName, KeySafety.MaxLength, GeneratedWhenEmpty = true)]
    public string? InstanceId { get; set; }

    /// <summary>
    /// StackExchange.Redis connection string used by the hosting layer (for example
    /// <c>myredis.redis.cache.windows.net:6380,ssl=true,password=...</c>). Never logged.
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>
    /// How long the instance's heartbeat, and with it every lease the instance holds, lives after its last cycle:
    /// others may take its leases that long after it stopped. Default 30 s.
    /// </summary>
    [OptionRange(SectionName, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the instance heartbeats, which renews every lease it holds at once. Default 10 s.</summary>
    [OptionRange(SectionName, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan RenewInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How soon a cycle is retried after a failed one, while leases are Uncertain. Default 2 s
    /// (client-go's RetryPeriod).
    /// </summary>
    [OptionRange(SectionName, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long an instance's expired registry entry (and its metadata key) is kept before any cycle trims it: an
    /// instance counts as live, and its leases as valid, for <see cref="LeaseTtl"/> after its last heartbeat. Default 30 s.
    /// </summary>
    [OptionRange(SectionName, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan HeartbeatTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often the instance heartbeats. The lease cycle runs every
    /// min(<see cref="RenewInterval"/>, <see cref="HeartbeatInterval"/>) and heartbeats and renews in the
    /// same round trip. Default 10 s.
    /// </summary>
    [OptionRange(SectionName, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long before the lease can expire in Redis this instance stops treating it as owned. A lease is
    /// locally valid until <c>send time of the last successful renew + LeaseTtl - SafetyMargin</c>, measured
    /// on a monotonic clock, so a slow network or a paused process errs on the side of stopping early. Default 2 s.
    /// </summary>
    [OptionRange(SectionName, "it must not be negative", Minimum = "00:00:00")]
    public TimeSpan SafetyMargin { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Upper bound of one Redis round trip of the lease cycle; a slower one counts as failed. Default 5 s.</summary>
    [OptionRange(SectionName, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Upper bound of the release-and-deregister round trip on shutdown. The Azure Functions host kills the
    /// worker about 5 s after asking it to stop, so this must stay below that. Default 3 s.
    /// </summary>
    [OptionRange(SectionName, OptionRule.AtLeastMinimumTiming + " and less than 5 s, the grace the Azure Functions host gives a worker before killing it", Minimum = OptionRule.MinimumTiming, Maximum = "00:00:05", MaximumIsExclusive = true)]
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Extra capacity per instance over the exact fair share <c>ceil(S/N)</c>, as a fraction (0 to 1). 0, the
    /// default, keeps the load exactly balanced; a little slack (e.g. 0.1) moves fewer sessions when instances
    /// join or leave.
    /// </summary>
    [OptionRange(SectionName, "it must be between 0 (exact balance) and 1", Minimum = "0", Maximum = "1")]
    public double BalanceEpsilon { get; set; }

    /// <summary>The lease cycle's period: min(<see cref="RenewInterval"/>, <see cref="HeartbeatInterval"/>).</summary>
    public TimeSpan CycleInterval => RenewInterval < HeartbeatInterval ? RenewInterval : HeartbeatInterval;
}
