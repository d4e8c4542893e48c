using Microsoft.Extensions.Logging;

namespace PollCtl.Manifest;

internal static partial class StateFileLog
{
    [LoggerMessage(EventId = 7001, Level = LogLevel.Debug, Message = "State saved: path={Path} bytes={Bytes}")]
    public static partial void Saved(ILogger logger, string path, int bytes);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Warning, Message = "State file unreadable, restored from backup: path={Path} reason={Reason}")]
    public static partial void FellBack(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Error, Message = "State corrupted: path={Path} file={FileReason} backup={BackupReason}")]
    public static partial void Corrupted(ILogger logger, string path, string fileReason, string backupReason);

    [LoggerMessage(EventId = 7010, Level = LogLevel.Information, Message = "State lock acquired: lock={Path} waitedMs={WaitedMs:0}")]
    public static partial void LockAcquired(ILogger logger, string path, double waitedMs);

    [LoggerMessage(EventId = 7011, Level = LogLevel.Information, Message = "State lock released: lock={Path} heldMs={HeldMs:0}")]
    public static partial void LockReleased(ILogger logger, string path, double heldMs);

    [LoggerMessage(EventId = 7012, Level = LogLevel.Information, Message = "State lock wait started: lock={Path} holderPid={Pid} holderHost={Host}")]
    public static partial void LockWaiting(ILogger logger, string path, int pid, string host);

    [LoggerMessage(EventId = 7013, Level = LogLevel.Warning, Message = "State lock stale, broken: lock={Path} holderPid={Pid} holderHost={Host} acquired={Acquired:O}")]
    public static partial void LockBroken(ILogger logger, string path, int pid, string host, DateTimeOffset acquired);

    [LoggerMessage(EventId = 7014, Level = LogLevel.Warning, Message = "State lock timed out: lock={Path} holderPid={Pid} holderHost={Host} waitedSeconds={Seconds}")]
    public static partial void LockTimedOut(ILogger logger, string path, int pid, string host, double seconds);
}
