using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Election;

namespace PollLease.Fleet;

/// <summary>
/// The fleet janitor (section <c>PollLease:Janitor</c>): one instance at a time, elected for the <c>janitor</c>
/// role, removes dead instances from the registry, cleans leases and fences of sessions that no longer exist, and
/// publishes the fleet gauges. Its election's key prefix and instance id come from <c>PollLease</c>.
/// </summary>
public sealed class JanitorOptions
{
    /// <summary>Configuration section: <c>PollLease:Janitor</c>.</summary>
    public const string SectionName = "PollLease:Janitor";

    /// <summary>The role the janitor is elected for.</summary>
    public const string Role = "janitor";

    /// <summary>
    /// Run the janitor election in this instance. Default true: without a janitor, leases and fences of removed
    /// sessions and registry entries of crashed instances stay in Redis, and nobody publishes the fleet gauges.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Time between two sweeps of the elected janitor. Default 30 s.</summary>
    [OptionRange(SectionName, OptionRule.AtLeastMinimumTiming, Minimum = OptionRule.MinimumTiming)]
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Keys per SCAN page when looking for orphaned leases and fences. Default 500.</summary>
    [OptionRange(SectionName, "it must be between 10 and 10000", Minimum = "10", Maximum = "10000")]
    public int ScanPageSize { get; set; } = 500;

    /// <summary>
    /// Clean leases and fences of sessions missing from the Redis catalog. Only meaningful when sessions come from
    /// the Redis catalog; the hosting layer turns it off when the application supplies its own session directory.
    /// </summary>
    public bool CleanOrphans { get; set; } = true;

    /// <summary>
    /// Publish the fleet's assignment after every sweep (key <c>{prefix}:assignment</c>), so every instance plans from
    /// the same previous owners and a join or leave moves only the sessions it must. Default true.
    /// </summary>
    public bool PublishAssignment { get; set; } = true;

    /// <summary>The janitor election's timings (client-go defaults); Role, KeyPrefix and InstanceId are set for you.</summary>
    [OptionRequired(SectionName)]
    [ValidateObjectMembers(typeof(JanitorElectionValidator))]
    public ElectionOptions Election { get; set; } = new();
}
