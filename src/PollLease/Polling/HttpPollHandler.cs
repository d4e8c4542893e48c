using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PollLease.Coordination;
using PollLease.Messages;
using PollLease.Telemetry;

namespace PollLease.Polling;

/// <summary>
/// The <c>http</c> handler: GETs the session's target with <c>If-None-Match</c>, and on a change appends the
/// response (or its digest) to the session's message log under the lease's fencing token. Only hosts in
/// <see cref="HttpPollOptions.AllowedHosts"/> are fetched, redirects included.
/// </summary>
/// <remarks>
/// The last ETag and body digest per session are cached in memory and, after a failover, recovered from the
/// last message in the log, so a new owner does not record an unchanged resource again.
/// </remarks>
public sealed class HttpPollHandler : IPollHandler, IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly MessageLog _log;
    private readonly HttpPollOptions _options;
    private readonly HttpClient _client;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Seen> _seen = new(StringComparer.Ordinal);

    /// <summary>Creates the handler.</summary>
    /// <param name="log">Where changes are written.</param>
    /// <param name="options">Allowlist, timeout, redirects, body limit, store mode; validated here.</param>
    /// <param name="loggerFactory">Logging (refused hosts).</param>
    /// <param name="transport">HTTP transport; a SocketsHttpHandler without automatic redirects by default.</param>
    public HttpPollHandler(MessageLog log, IOptions<HttpPollOptions> options, ILoggerFactory? loggerFactory = null, HttpMessageHandler? transport = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(options);
        OptionRule.ThrowIfInvalid(new HttpPollOptionsValidator(), options.Value, HttpPollOptions.SectionName);
        _log = log;
        _options = options.Value;
        _client = new HttpClient(transport ?? new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
        _client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("PollLease", "1.0"));
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollLease.Http");
    }

    /// <inheritdoc />
    public async Task<PollOutcome> PollAsync(PollContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var sessionId = context.Session.Id;
        if (!Uri.TryCreate(context.Session.Target, UriKind.Absolute, out var uri))
        {
            return PollOutcome.Failed($"target '{context.Session.Target}' is not an absolute URI");
        }
        var refusal = Refusal(uri);
        if (refusal is not null)
        {
            HttpLog.Refused(_logger, sessionId, uri.Host, refusal);
            return PollOutcome.Failed(refusal);
        }

        var seen = _seen.TryGetValue(sessionId, out var cached) ? cached : await LastSeenAsync(sessionId, cancellationToken).ConfigureAwait(false);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.Timeout);
        try
        {
            for (var hop = 0; ; hop++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, uri);
                if (seen?.ETag is { Length: > 0 } etag && EntityTagHeaderValue.TryParse(etag, out var tag))
                {
                    request.Headers.IfNoneMatch.Add(tag);
                }
                using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                var status = (int)response.StatusCode;
                if (response.StatusCode == HttpStatusCode.NotModified)
                {
                    return PollOutcome.Unchanged("304 not modified");
                }
                if (status is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    if (hop >= _options.MaxRedirects)
                    {
                        return PollOutcome.Failed($"more than {_options.MaxRedirects} redirects");
                    }
                    uri = location.IsAbsoluteUri ? location : new Uri(uri, location);
                    refusal = Refusal(uri);
                    if (refusal is not null)
                    {
                        HttpLog.Refused(_logger, sessionId, uri.Host, "redirect: " + refusal);
                        return PollOutcome.Failed("redirect refused: " + refusal);
                    }
                    continue;
                }
                if (!response.IsSuccessStatusCode)
                {
                    return PollOutcome.Failed($"HTTP {status} from {uri.Host}");
                }
                var body = await ReadLimitedAsync(response.Content, timeout.Token).ConfigureAwait(false);
                if (body is null)
                {
                    return PollOutcome.Failed($"body larger than {_options.MaxBodyBytes} bytes");
                }
                var digest = Convert.ToHexStringLower(SHA256.HashData(body));
                var newEtag = response.Headers.ETag?.ToString();
                if (seen is not null && seen.Digest == digest)
                {
                    _seen[sessionId] = new Seen(newEtag ?? seen.ETag, digest);
                    return PollOutcome.Unchanged("same digest");
                }
                var record = new HttpChange(status, newEtag, digest, _options.Store == HttpStoreMode.Body ? Encoding.UTF8.GetString(body) : null);
                await _log.AppendAsync(sessionId, context.Token, [JsonSerializer.Serialize(record, Json)], cancellationToken).ConfigureAwait(false);
                _seen[sessionId] = new Seen(newEtag, digest);
                return PollOutcome.Changed($"HTTP {status}, {body.Length} bytes");
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return PollOutcome.Failed($"timed out after {_options.Timeout.TotalMilliseconds:0} ms");
        }
        catch (HttpRequestException e)
        {
            return PollOutcome.Failed($"request failed: {e.Message}");
        }
    }

    /// <inheritdoc />
    public void Dispose() => _client.Dispose();

    private string? Refusal(Uri uri)
    {
        if (uri.Scheme != Uri.UriSchemeHttps && !(uri.Scheme == Uri.UriSchemeHttp && _options.AllowInsecureHttp))
        {
            return $"scheme '{uri.Scheme}' is not allowed (https only unless {HttpPollOptions.SectionName}:AllowInsecureHttp)";
        }
        var host = uri.IdnHost;
        foreach (var allowed in _options.AllowedHosts)
        {
            if (allowed.StartsWith("*.", StringComparison.Ordinal)
                ? host.EndsWith(allowed[1..], StringComparison.OrdinalIgnoreCase)
                : string.Equals(host, allowed, StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }
        }
        return $"host '{host}' is not in {HttpPollOptions.SectionName}:AllowedHosts";
    }

    private async Task<byte[]?> ReadLimitedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > _options.MaxBodyBytes)
        {
            return null;
        }
        await using var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > _options.MaxBodyBytes)
            {
                return null;
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private async Task<Seen?> LastSeenAsync(string sessionId, CancellationToken cancellationToken)
    {
        var last = await _log.ReadAsync(sessionId, 1, cancellationToken).ConfigureAwait(false);
        if (last.Count == 0)
        {
            return null;
        }
        try
        {
            var change = JsonSerializer.Deserialize<HttpChange>(last[0].Body, Json);
            return change?.Digest is null ? null : new Seen(change.ETag, change.Digest);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record Seen(string? ETag, string Digest);
}

/// <summary>What the <c>http</c> handler appends to the message log on a change.</summary>
/// <param name="Status">The HTTP status.</param>
/// <param name="ETag">The response's ETag, if any.</param>
/// <param name="Digest">SHA-256 of the body, lower-case hex.</param>
/// <param name="Body">The body as UTF-8 text, when storing bodies.</param>
internal sealed record HttpChange(int Status, string? ETag, string Digest, string? Body);
