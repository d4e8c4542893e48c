using Microsoft.Extensions.Logging;

namespace PollLease.Telemetry;

/// <summary>Log lines of the hosting layer's triggers (timer and warm-up functions).</summary>
internal static partial class HostingLog
{
    [LoggerMessage(EventId = 3010, Level = LogLevel.Information, Message = "Triggered cycle: instance={Instance} trigger={Trigger} succeeded={Succeeded} acquired={Acquired} renewed={Renewed} lost={Lost} live={Live}")]
    public static partial void TriggeredCycle(ILogger logger, string instance, string trigger, bool succeeded, int acquired, int renewed, int lost, int live);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Information, Message = "Trigger skipped: instance={Instance} trigger={Trigger}; the instance is not running (starting or stopping)")]
    public static partial void TriggerSkipped(ILogger logger, string instance, string trigger);

    [LoggerMessage(EventId = 3012, Level = LogLevel.Debug, Message = "Poll pass requested: instance={Instance} trigger={Trigger} owned={Owned}")]
    public static partial void PollWoken(ILogger logger, string instance, string trigger, int owned);

    [LoggerMessage(EventId = 3013, Level = LogLevel.Information, Message = "Triggered janitor sweep: instance={Instance} trigger={Trigger} removedNodes={Nodes} removedLeases={Leases} removedFences={Fences}")]
    public static partial void TriggeredSweep(ILogger logger, string instance, string trigger, int nodes, int leases, int fences);
}
