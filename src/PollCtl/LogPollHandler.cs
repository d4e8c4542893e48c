using PollLease.Polling;

namespace PollCtl;

/// <summary>The local fleet's demo handler: it does not call the target, it only reports the poll (the scheduler logs each start).</summary>
internal sealed class LogPollHandler : IPollHandler
{
    public Task<PollOutcome> PollAsync(PollContext context, CancellationToken cancellationToken) =>
        Task.FromResult(PollOutcome.Unchanged($"token {context.Token}"));
}
