using Microsoft.Extensions.Logging;

namespace PollLease.Telemetry;

internal static partial class MessagesLog
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Message skipped: session={SessionId} index={Index} reason=undecodable element={Preview}")]
    public static partial void SkippedElement(ILogger logger, string sessionId, int index, string preview);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "Migrated session to list format: session={SessionId} messages={Count}")]
    public static partial void Migrated(ILogger logger, string sessionId, int count);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Error, Message = "Legacy message key unreadable: session={SessionId}")]
    public static partial void LegacyUnreadable(ILogger logger, Exception exception, string sessionId);
}
