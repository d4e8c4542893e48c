using Microsoft.Extensions.Logging;

namespace PollLease.Telemetry;

/// <summary>Log lines of the published assignment: the janitor publishing it, instances following it.</summary>
internal static partial class AssignmentLog
{
    [LoggerMessage(EventId = 8001, Level = LogLevel.Information, Message = "Assignment followed: instance={Instance} version={Version} sessions={Sessions}")]
    public static partial void Followed(ILogger logger, string instance, long version, int sessions);

    [LoggerMessage(EventId = 8002, Level = LogLevel.Warning, Message = "Assignment ignored: instance={Instance} version={Version} is malformed ({Error}); planning from the live instances alone until the janitor publishes a valid one")]
    public static partial void Malformed(ILogger logger, string instance, long version, string error);

    [LoggerMessage(EventId = 8003, Level = LogLevel.Warning, Message = "Assignment read failed: instance={Instance}; keeping the one it has")]
    public static partial void ReadFailed(ILogger logger, Exception exception, string instance);

    [LoggerMessage(EventId = 8004, Level = LogLevel.Information, Message = "Assignment published: janitor={Instance} version={Version} instances={Instances} sessions={Sessions} changed={Changed}")]
    public static partial void Published(ILogger logger, string instance, long version, int instances, int sessions, int changed);

    [LoggerMessage(EventId = 8005, Level = LogLevel.Warning, Message = "Instance stale: instance={Instance} stale={Stale} heartbeatAge={Age}; planning without it until it heartbeats again (its sessions go to their owners in the assignment without it)")]
    public static partial void Stale(ILogger logger, string instance, string stale, TimeSpan age);

    [LoggerMessage(EventId = 8006, Level = LogLevel.Information, Message = "Instance fresh again: instance={Instance} fresh={Fresh}; planning with it")]
    public static partial void Fresh(ILogger logger, string instance, string fresh);

    [LoggerMessage(EventId = 8007, Level = LogLevel.Warning, Message = "Hand-off not taken: instance={Instance} session={Session} target={Target}; no hand-offs to it for {Backoff}")]
    public static partial void HandOffFailed(ILogger logger, string instance, string session, string target, TimeSpan backoff);
}
