using Microsoft.Extensions.Logging;

namespace PollLease.Telemetry;

/// <summary>The lease log lines, worded as key=value pairs whose wording stays fixed so existing log searches keep working.</summary>
internal static partial class LeaseLog
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Lease acquired: instance={Instance} endpoint={Session} token={Token}")]
    public static partial void Acquired(ILogger logger, string instance, string session, long token);

    [LoggerMessage(EventId = 1050, Level = LogLevel.Warning, Message = "Lease failover: instance={Instance} endpoint={Session} token={Token} from={From}")]
    public static partial void Failover(ILogger logger, string instance, string session, long token, string from);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Debug, Message = "Lease renewed: instance={Instance} endpoint={Session} token={Token}")]
    public static partial void Renewed(ILogger logger, string instance, string session, long token);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Lease released: instance={Instance} endpoint={Session} reason={Reason}")]
    public static partial void Released(ILogger logger, string instance, string session, string reason);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "Lease uncertain: instance={Instance} endpoint={Session} token={Token} reason={Reason}; no new polls until renewed")]
    public static partial void Uncertain(ILogger logger, string instance, string session, long token, string reason);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Lease lost: instance={Instance} endpoint={Session} token={Token} reason={Reason}")]
    public static partial void Lost(ILogger logger, string instance, string session, long token, string reason);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Lease cycle failed: instance={Instance} owned={Owned}; leases are uncertain until a renew succeeds")]
    public static partial void CycleFailed(ILogger logger, Exception exception, string instance, int owned);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "Lease release failed: instance={Instance} endpoint={Session} reason={Reason}; the lease will expire by its TTL")]
    public static partial void ReleaseFailed(ILogger logger, Exception exception, string instance, string session, string reason);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Information, Message = "Instance registered: instance={Instance} prefix={Prefix} leaseTtl={LeaseTtl} renewInterval={RenewInterval}")]
    public static partial void Registered(ILogger logger, string instance, string prefix, TimeSpan leaseTtl, TimeSpan renewInterval);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Information, Message = "Instance stopped: instance={Instance} released={Released} deregistered={Deregistered}")]
    public static partial void Stopped(ILogger logger, string instance, int released, bool deregistered);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Error, Message = "Instance stop could not release its leases: instance={Instance} leftToExpire={Count}; others may take them once its heartbeat expires (within leaseTtl={LeaseTtl})")]
    public static partial void StopFailed(ILogger logger, Exception exception, string instance, int count, TimeSpan leaseTtl);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Lease value in unexpected format: endpoint={Session} value={Value}; treating the session as held by someone else")]
    public static partial void MalformedLease(ILogger logger, string session, string value);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Error, Message = "Lease event handler threw: instance={Instance} kind={Kind} endpoint={Session}")]
    public static partial void HandlerFailed(ILogger logger, Exception exception, string instance, string kind, string session);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Warning, Message = "Session source failed: instance={Instance}; keeping the previous session list")]
    public static partial void SessionSourceFailed(ILogger logger, Exception exception, string instance);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Warning, Message = "New data epoch: instance={Instance} epoch={Previous}->{Epoch}; Redis lost the fleet's data, changed server, or the fleet is new: nothing is acquired for {Quarantine}, while an owner of a vanished lease may still poll")]
    public static partial void DataEpoch(ILogger logger, string instance, string previous, string epoch, TimeSpan quarantine);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Information, Message = "Lease cycle recovered: instance={Instance} after {Failures} failed cycles")]
    public static partial void Recovered(ILogger logger, string instance, int failures);
}
