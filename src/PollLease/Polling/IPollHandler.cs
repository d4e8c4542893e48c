using PollLease.Sessions;

namespace PollLease.Polling;

/// <summary>
/// The extension point: what one poll of one session does. Resolved from dependency injection; one instance
/// serves every session, concurrently, so implementations must be thread-safe.
/// </summary>
public interface IPollHandler
{
    /// <summary>
    /// Polls <paramref name="context"/>'s session once. Every write the poll makes through PollLease (the message
    /// log) must carry <see cref="PollContext.Token"/>, so a write from an instance that lost the lease is rejected.
    /// </summary>
    /// <param name="context">The session, its fencing token and who is polling.</param>
    /// <param name="cancellationToken">Cancelled at the poll timeout, which ends before the lease's validity deadline.</param>
    /// <returns>What the poll found.</returns>
    Task<PollOutcome> PollAsync(PollContext context, CancellationToken cancellationToken);
}

/// <summary>What a handler is given for one poll.</summary>
/// <param name="Session">The session being polled.</param>
/// <param name="Token">The session's fencing token for this lease.</param>
/// <param name="InstanceId">The polling instance.</param>
/// <param name="ScheduledAt">When the poll was due.</param>
public sealed record PollContext(PollSession Session, long Token, string InstanceId, DateTimeOffset ScheduledAt);

/// <summary>How a poll ended.</summary>
public enum PollStatus
{
    /// <summary>The target changed and the change was recorded.</summary>
    Changed,

    /// <summary>The target had not changed.</summary>
    Unchanged,

    /// <summary>The poll failed; <see cref="PollOutcome.Detail"/> says why.</summary>
    Failed,
}

/// <summary>The result of one poll.</summary>
/// <param name="Status">How it ended.</param>
/// <param name="Detail">A short human-readable detail (an error, a status code); null when there is nothing to add.</param>
public sealed record PollOutcome(PollStatus Status, string? Detail = null)
{
    /// <summary>A poll that found and recorded a change.</summary>
    public static PollOutcome Changed(string? detail = null) => new(PollStatus.Changed, detail);

    /// <summary>A poll that found nothing new.</summary>
    public static PollOutcome Unchanged(string? detail = null) => new(PollStatus.Unchanged, detail);

    /// <summary>A failed poll.</summary>
    public static PollOutcome Failed(string detail) => new(PollStatus.Failed, detail);
}
