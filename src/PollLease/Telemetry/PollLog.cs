using Microsoft.Extensions.Logging;
using PollLease.Polling;

namespace PollLease.Telemetry;

/// <summary>The poll scheduler's log lines (one line per poll start with instance, session and token, so a double poll shows in the log).</summary>
internal static partial class PollLog
{
    /// <summary>One line per poll start, at <see cref="PollingOptions.PollTraceLevel"/>.</summary>
    [LoggerMessage(EventId = 2001, Message = "Poll started: instance={Instance} endpoint={Session} token={Token}")]
    public static partial void Started(ILogger logger, LogLevel level, string instance, string session, long token);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Debug, Message = "Poll finished: instance={Instance} endpoint={Session} token={Token} status={Status} detail={Detail}")]
    public static partial void Finished(ILogger logger, string instance, string session, long token, PollStatus status, string? detail);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Poll failed: instance={Instance} endpoint={Session} token={Token} detail={Detail}")]
    public static partial void Failed(ILogger logger, Exception? exception, string instance, string session, long token, string detail);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "Poll skipped: instance={Instance} endpoint={Session} reason={Reason}")]
    public static partial void Skipped(ILogger logger, string instance, string session, string reason);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Error, Message = "Scheduling pass failed: instance={Instance}; the next pass runs at the next tick")]
    public static partial void PassFailed(ILogger logger, Exception exception, string instance);
}
