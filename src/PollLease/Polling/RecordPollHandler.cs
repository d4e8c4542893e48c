using System.Text.Json;
using PollLease.Messages;

namespace PollLease.Polling;

/// <summary>
/// The <c>record</c> handler: appends a poll record (instance, token, scheduled and actual time) to the session's
/// message log under the lease's fencing token. The demo handler, and what the reliability tests read: a stale
/// owner's append is rejected, so the log proves who polled when.
/// </summary>
public sealed class RecordPollHandler : IPollHandler
{
    private readonly MessageLog _log;
    private readonly TimeProvider _time;

    /// <summary>Creates the handler.</summary>
    /// <param name="log">The message log to append to.</param>
    /// <param name="timeProvider">Clock for the record's time.</param>
    public RecordPollHandler(MessageLog log, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        _log = log;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public async Task<PollOutcome> PollAsync(PollContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var record = JsonSerializer.Serialize(new PollRecord(context.InstanceId, context.Token, context.ScheduledAt, _time.GetUtcNow()), PollRecord.Json);
        var length = await _log.AppendAsync(context.Session.Id, context.Token, [record], cancellationToken).ConfigureAwait(false);
        return PollOutcome.Changed($"recorded (log length {length})");
    }
}

/// <summary>What the <c>record</c> handler writes: who polled the session, under which token, and when.</summary>
/// <param name="Instance">The polling instance.</param>
/// <param name="Token">The lease's fencing token.</param>
/// <param name="Scheduled">When the poll was due.</param>
/// <param name="Polled">When it ran.</param>
public sealed record PollRecord(string Instance, long Token, DateTimeOffset Scheduled, DateTimeOffset Polled)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Decodes a record written by the <c>record</c> handler, or null when the body is something else.</summary>
    /// <param name="body">A message body.</param>
    public static PollRecord? TryParse(string body)
    {
        try
        {
            return JsonSerializer.Deserialize<PollRecord>(body, Json);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
