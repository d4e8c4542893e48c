using Microsoft.Extensions.Logging;

namespace PollLease.Telemetry;

internal static partial class HttpLog
{
    [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "Poll target refused: session={SessionId} host={Host} reason={Reason}")]
    public static partial void Refused(ILogger logger, string sessionId, string host, string reason);
}
