using Microsoft.Extensions.Logging;
using PollLease.Telemetry;

namespace PollLease.Election;

/// <summary>What every part of one election shares: its own copy of the validated options, the clock, the log and the metrics.</summary>
internal sealed record ElectionContext(ElectionOptions Options, TimeProvider Time, ILogger Logger, ElectionMetrics Metrics)
{
    public string Role => Options.Role;

    public string InstanceId => Options.InstanceId;
}
