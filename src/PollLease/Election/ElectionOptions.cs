using PollLease.Coordination;

namespace PollLease.Election;

/// <summary>
/// Settings of one <see cref="LeaderElection"/>. The defaults follow client-go's proven ratios (lease 15 s,
/// renew deadline 10 s, retry 2 s): a leader that cannot renew stops acting 5 s before its key can expire, so
/// nobody else can be elected while it still believes it leads. <see cref="ElectionOptionsValidator"/> checks
/// every value (by the rule on its property) and relationship when the election is constructed.
/// </summary>
public sealed class ElectionOptions
{
    // Failures name the field "Election:Ttl"; the janitor's, bound from configuration, "PollLease:Janitor:Election:Ttl".
    internal const string Section = "Election";

    /// <summary>Key prefix shared with the leases (letters, digits, '.', '_', '-'; up to 32). The key is <c>{prefix}:leader:{role}</c>.</summary>
    [OptionKey(Section, 32)]
    public string KeyPrefix { get; set; } = "poll";

    /// <summary>The role this election is for (letters, digits, '.', '_', '-'; 1 to 64 characters), e.g. <c>janitor</c>.</summary>
    [OptionKey(Section, ElectionOptionsValidator.MaxRoleLength)]
    public string Role { get; set; } = "";

    /// <summary>This candidate's id (letters, digits, '.', '_', '-'; 1 to 128 characters), unique in the fleet.</summary>
    [OptionKey(Section, KeySafety.MaxLength)]
    public string InstanceId { get; set; } = "";

    /// <summary>Time to live of the leader key; another candidate can take over this long after the last renew.</summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often the leader renews its key (its heartbeat interval).</summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan RenewInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long after the last successful renew was SENT the leader keeps acting without another one. Past it the
    /// leader demotes itself. Must be well below <see cref="Ttl"/>: the gap covers clock-rate drift and timers.
    /// </summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan RenewDeadline { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often a follower checks a held key (jittered, and sooner when the key's remaining TTL is shorter).</summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Longest wait for one Redis call; a hung call counts as a failure.</summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>After the connection drops, the leader keeps acting at most this long (and never past its renew deadline).</summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan DisconnectGracePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the leader re-reads its key to check that its token is still current, besides each renew.</summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan ValidationInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Cap of the exponential backoff after repeated store errors.</summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Consecutive store errors that open the circuit breaker (no Redis calls until <see cref="CircuitBreakDuration"/> passes).</summary>
    [OptionRange(Section, "it must be at least 1", Minimum = "1")]
    public int CircuitBreakerThreshold { get; set; } = 5;

    /// <summary>How long an open circuit stays open before one trial call.</summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan CircuitBreakDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Consecutive failed health checks after which the leader steps down and releases the key.</summary>
    [OptionRange(Section, "it must be at least 1", Minimum = "1")]
    public int HealthCheckFailureThreshold { get; set; } = 3;

    /// <summary>Longest wait for OnDemote or OnNewLeader before later callbacks are delivered anyway.</summary>
    [OptionRange(Section, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan CallbackTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A copy for another role (used by <see cref="RoleManager"/>).</summary>
    /// <param name="role">The role of the copy.</param>
    public ElectionOptions WithRole(string role)
    {
        var copy = (ElectionOptions)MemberwiseClone();
        copy.Role = role;
        return copy;
    }
}
