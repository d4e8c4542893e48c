using Microsoft.Extensions.Logging;

namespace PollLease.Telemetry;

internal static partial class SessionLog
{
    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "Session skipped: session={SessionId} reason={Reason}")]
    public static partial void MalformedSession(ILogger logger, string sessionId, string reason);
}
