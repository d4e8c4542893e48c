using Microsoft.Extensions.Logging;

namespace PollLease.Telemetry;

/// <summary>Leader-election and janitor log lines (EventIds 7701-7749), each with the role and the instance.</summary>
internal static partial class ElectionLog
{
    [LoggerMessage(EventId = 7701, Level = LogLevel.Information, Message = "Election started: role={Role} instance={Instance} ttl={Ttl} renewDeadline={RenewDeadline}")]
    public static partial void Started(ILogger logger, string role, string instance, TimeSpan ttl, TimeSpan renewDeadline);

    [LoggerMessage(EventId = 7702, Level = LogLevel.Information, Message = "Election stopped: role={Role} instance={Instance} keyDeleted={KeyDeleted} demoteCompleted={DemoteCompleted}")]
    public static partial void Stopped(ILogger logger, string role, string instance, bool keyDeleted, bool demoteCompleted);

    [LoggerMessage(EventId = 7703, Level = LogLevel.Information, Message = "Promoted to leader: role={Role} instance={Instance} token={Token}")]
    public static partial void Promoted(ILogger logger, string role, string instance, long token);

    [LoggerMessage(EventId = 7704, Level = LogLevel.Warning, Message = "Demoted: role={Role} instance={Instance} token={Token} reason={Reason}")]
    public static partial void Demoted(ILogger logger, string role, string instance, long token, string reason);

    [LoggerMessage(EventId = 7705, Level = LogLevel.Information, Message = "New leader observed: role={Role} instance={Instance} leader={Leader}")]
    public static partial void NewLeader(ILogger logger, string role, string instance, string leader);

    [LoggerMessage(EventId = 7706, Level = LogLevel.Warning, Message = "Election store call failed: role={Role} instance={Instance} operation={Operation} consecutive={Failures}")]
    public static partial void StoreFailed(ILogger logger, Exception exception, string role, string instance, string operation, int failures);

    [LoggerMessage(EventId = 7707, Level = LogLevel.Warning, Message = "Election circuit opened: role={Role} instance={Instance} after {Failures} consecutive failures; no Redis calls for {Duration}")]
    public static partial void CircuitOpened(ILogger logger, string role, string instance, int failures, TimeSpan duration);

    [LoggerMessage(EventId = 7708, Level = LogLevel.Error, Message = "Election callback threw: role={Role} instance={Instance} callback={Callback}")]
    public static partial void CallbackFailed(ILogger logger, Exception exception, string role, string instance, string callback);

    [LoggerMessage(EventId = 7709, Level = LogLevel.Warning, Message = "Election callback still running after {Timeout}: role={Role} instance={Instance} callback={Callback}; delivering later callbacks anyway")]
    public static partial void CallbackSlow(ILogger logger, string role, string instance, string callback, TimeSpan timeout);

    [LoggerMessage(EventId = 7710, Level = LogLevel.Warning, Message = "Health check failed: role={Role} instance={Instance} consecutive={Failures} threshold={Threshold}")]
    public static partial void HealthFailed(ILogger logger, Exception? exception, string role, string instance, int failures, int threshold);

    [LoggerMessage(EventId = 7711, Level = LogLevel.Warning, Message = "Connection lost: role={Role} instance={Instance} leader={IsLeader}; grace period {Grace} started")]
    public static partial void Disconnected(ILogger logger, string role, string instance, bool isLeader, TimeSpan grace);

    [LoggerMessage(EventId = 7712, Level = LogLevel.Information, Message = "Connection restored: role={Role} instance={Instance}; verifying leadership against Redis")]
    public static partial void Reconnected(ILogger logger, string role, string instance);

    [LoggerMessage(EventId = 7713, Level = LogLevel.Warning, Message = "Leader key in unexpected format: role={Role} value={Value}; treating the role as held by someone else")]
    public static partial void MalformedKey(ILogger logger, string role, string value);

    [LoggerMessage(EventId = 7720, Level = LogLevel.Information, Message = "Janitor sweep: instance={Instance} removedNodes={Nodes} removedLeases={Leases} removedFences={Fences} live={Live} sessions={Sessions} unowned={Unowned} busiest={Busiest} ideal={Ideal}")]
    public static partial void JanitorSwept(ILogger logger, string instance, int nodes, int leases, int fences, int live, int sessions, int unowned, int busiest, int ideal);

    [LoggerMessage(EventId = 7721, Level = LogLevel.Warning, Message = "Janitor sweep failed: instance={Instance}; retrying next interval")]
    public static partial void JanitorFailed(ILogger logger, Exception exception, string instance);

    [LoggerMessage(EventId = 7722, Level = LogLevel.Warning, Message = "Janitor sweep abandoned: instance={Instance}; its janitor token is no longer current")]
    public static partial void JanitorFenced(ILogger logger, string instance);
}
