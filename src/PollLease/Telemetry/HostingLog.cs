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

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Redis connection not made: instance={Instance} attempt={Attempt}; retrying in {Delay} (the host runs on, leases wait for the connection)")]
    public static partial void ConnectFailed(ILogger logger, Exception exception, string instance, int attempt, TimeSpan delay);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Instance start failed: instance={Instance}; retrying in {Delay}")]
    public static partial void StartFailed(ILogger logger, Exception exception, string instance, TimeSpan delay);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Stop budget spent: instance={Instance} step={Step} budget={Budget} leftToExpire={Left}; what the step had not done expires by its TTL")]
    public static partial void StopBudgetSpent(ILogger logger, string instance, string step, TimeSpan budget, int left);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Information, Message = "Stop finished: instance={Instance} elapsed={Elapsed} leftToExpire={Left}")]
    public static partial void StopFinished(ILogger logger, string instance, TimeSpan elapsed, int left);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "Stop step failed: instance={Instance} step={Step}")]
    public static partial void StopStepFailed(ILogger logger, Exception exception, string instance, string step);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Critical, Message = "Instance failed: instance={Instance}; stopping the host")]
    public static partial void InstanceFailed(ILogger logger, Exception exception, string instance);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Error, Message = "Janitor failed to start: instance={Instance}; this instance does no fleet-wide duties")]
    public static partial void JanitorFailed(ILogger logger, Exception exception, string instance);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Warning, Message = "Polls still running after the drain: instance={Instance} leases={Leases}; the leases are not released but expire by their TTL, so no other instance polls alongside a poll that ignores cancellation")]
    public static partial void LeasesKept(ILogger logger, string instance, int leases);
}
