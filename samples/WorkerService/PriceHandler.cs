using System.Collections.Concurrent;
using PollLease.Polling;
using PollLease.Messages;

namespace WorkerService;

/// <summary>
/// Polls a session's target (an HTTP API returning, say, a price) and records each new body in the session's
/// message log under the lease's fencing token, so a stale owner (paused, partitioned) cannot record over the
/// new owner. Unchanged bodies are not recorded again.
/// </summary>
internal sealed partial class PriceHandler(IHttpClientFactory httpClients, MessageLog log, ILogger<PriceHandler> logger) : IPollHandler
{
    public const string HttpClientName = "prices";

    // Last body seen per session, to record changes only. After a failover the new owner starts empty and
    // records the first body it sees once: harmless for a price feed.
    private readonly ConcurrentDictionary<string, string> _lastBody = new(StringComparer.Ordinal);

    public async Task<PollOutcome> PollAsync(PollContext context, CancellationToken cancellationToken)
    {
        var session = context.Session;
        PollOutcome outcome;
        try
        {
            var http = httpClients.CreateClient(HttpClientName);
            using var response = await http.GetAsync(new Uri(session.Target), cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                outcome = PollOutcome.Failed($"HTTP {(int)response.StatusCode}");
            }
            else
            {
                var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                if (_lastBody.TryGetValue(session.Id, out var last) && last == body)
                {
                    outcome = PollOutcome.Unchanged();
                }
                else
                {
                    // Fenced: throws StaleTokenException when another instance holds a newer lease on the session.
                    await log.AppendAsync(session.Id, context.Token, [body], cancellationToken).ConfigureAwait(false);
                    _lastBody[session.Id] = body;
                    outcome = PollOutcome.Changed();
                }
            }
        }
        catch (HttpRequestException ex)
        {
            outcome = PollOutcome.Failed(ex.Message);
        }
        catch (StaleTokenException ex)
        {
            // The lease moved on while this poll ran: nothing was written, and the new owner polls from now on.
            outcome = PollOutcome.Failed(ex.Message);
        }
        Polled(logger, session.Id, context.Token, outcome.Status, outcome.Detail is null ? "" : $" ({outcome.Detail})");
        return outcome;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Polled session {SessionId} with token {Token}: {Status}{Detail}")]
    private static partial void Polled(ILogger logger, string sessionId, long token, PollStatus status, string detail);
}
