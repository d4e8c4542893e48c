using System.Net;
using Microsoft.Extensions.Options;
using PollLease.Messages;
using PollLease.Polling;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;

namespace PollLease.Tests.Polling;

/// <summary>The http handler against a local HttpListener server and real Redis for the message log.</summary>
public sealed class HttpPollHandlerTests(RedisServerFixture fixture) : IClassFixture<RedisServerFixture>, IAsyncLifetime, IDisposable
{
    private readonly string _prefix = RedisFixture.NewPrefix();
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string?> _ifNoneMatch = [];
    private Task? _serve;
    private int _port;

    private string Body { get; set; } = "v1";

    private string ETag { get; set; } = "\"v1\"";

    private TimeSpan Delay { get; set; }

    private string? RedirectTo { get; set; }

    public Task InitializeAsync()
    {
        _port = TestRedisServer.FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{_port}/");
        _listener.Start();
        _serve = Task.Run(ServeAsync);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        // Close only: after Stop(), Close() looks the port up again and can collide with a server another test
        // has started on it since ("Address already in use").
        _listener.Close();
        await (_serve ?? Task.CompletedTask);
    }

    public void Dispose()
    {
        ((IDisposable)_listener).Dispose();
        _stop.Dispose();
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            var match = ctx.Request.Headers["If-None-Match"];
            lock (_ifNoneMatch)
            {
                _ifNoneMatch.Add(match);
            }
            if (Delay > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(Delay, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            if (RedirectTo is not null)
            {
                ctx.Response.StatusCode = 302;
                ctx.Response.RedirectLocation = RedirectTo;
            }
            else if (match == ETag)
            {
                ctx.Response.StatusCode = 304;
            }
            else
            {
                ctx.Response.Headers["ETag"] = ETag;
                var bytes = System.Text.Encoding.UTF8.GetBytes(Body);
                ctx.Response.ContentLength64 = bytes.Length;
                await ctx.Response.OutputStream.WriteAsync(bytes);
            }
            try
            {
                ctx.Response.Close();
            }
            catch (HttpListenerException)
            {
                // The client gave up (timeout test).
            }
        }
    }

    private (HttpPollHandler Handler, MessageLog Log) Create(Action<HttpPollOptions>? configure = null)
    {
        var options = new HttpPollOptions { AllowInsecureHttp = true, Timeout = TimeSpan.FromSeconds(5) };
        options.AllowedHosts.Add("127.0.0.1");
        configure?.Invoke(options);
        var log = new MessageLog(fixture.Redis, _prefix);
        return (new HttpPollHandler(log, Options.Create(options)), log);
    }

    private static PollContext Context(string target, long token = 5) =>
        new(new PollSession("s1", target, TimeSpan.FromSeconds(5), false, new Dictionary<string, string>()), token, "node-a", DateTimeOffset.UtcNow);

    private async Task FenceAsync(long token) => await fixture.Redis.GetDatabase().StringSetAsync($"{{{_prefix}}}:fence:s1", token);

    [Fact]
    public async Task Etag_is_sent_back_and_an_unchanged_resource_writes_nothing()
    {
        await FenceAsync(5);
        var (handler, log) = Create();
        using var _ = handler;
        var target = $"http://127.0.0.1:{_port}/orders";

        Assert.Equal(PollStatus.Changed, (await handler.PollAsync(Context(target), CancellationToken.None)).Status);
        Assert.Equal(PollStatus.Unchanged, (await handler.PollAsync(Context(target), CancellationToken.None)).Status);
        Body = "v2";
        ETag = "\"v2\"";
        Assert.Equal(PollStatus.Changed, (await handler.PollAsync(Context(target), CancellationToken.None)).Status);

        lock (_ifNoneMatch)
        {
            Assert.Equal([null, "\"v1\"", "\"v1\""], _ifNoneMatch);
        }
        var messages = await log.ReadAsync("s1");
        Assert.Equal(2, messages.Count);
        Assert.Contains("\"body\":\"v2\"", messages[1].Body, StringComparison.Ordinal);

        // A new owner (fresh handler, e.g. after failover) recovers the ETag from the log.
        var (next, _) = Create();
        using var __ = next;
        Assert.Equal(PollStatus.Unchanged, (await next.PollAsync(Context(target), CancellationToken.None)).Status);
        lock (_ifNoneMatch)
        {
            Assert.Equal("\"v2\"", _ifNoneMatch[^1]);
        }
    }

    [Fact]
    public async Task Digest_mode_stores_no_body()
    {
        await FenceAsync(5);
        var (handler, log) = Create(o => o.Store = HttpStoreMode.Digest);
        using var _ = handler;
        await handler.PollAsync(Context($"http://127.0.0.1:{_port}/x"), CancellationToken.None);
        var message = Assert.Single(await log.ReadAsync("s1"));
        Assert.Contains("\"digest\":", message.Body, StringComparison.Ordinal);
        Assert.Contains("\"body\":null", message.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_slow_server_times_out_as_a_failed_poll()
    {
        Delay = TimeSpan.FromSeconds(3);
        var (handler, log) = Create(o => o.Timeout = TimeSpan.FromMilliseconds(200));
        using var _ = handler;
        var outcome = await handler.PollAsync(Context($"http://127.0.0.1:{_port}/slow"), CancellationToken.None);
        Assert.Equal(PollStatus.Failed, outcome.Status);
        Assert.Contains("timed out after 200 ms", outcome.Detail, StringComparison.Ordinal);
        Assert.Empty(await log.ReadAsync("s1"));
    }

    [Theory]
    [InlineData("http://example.org/", "host 'example.org' is not in PollLease:Http:AllowedHosts")]
    [InlineData("https://169.254.169.254/metadata", "host '169.254.169.254' is not in PollLease:Http:AllowedHosts")]
    [InlineData("file:///etc/passwd", "scheme 'file' is not allowed")]
    [InlineData("not a uri", "is not an absolute URI")]
    public async Task Targets_outside_the_allowlist_are_refused_without_a_request(string target, string reason)
    {
        var (handler, _) = Create();
        using var __ = handler;
        var outcome = await handler.PollAsync(Context(target), CancellationToken.None);
        Assert.Equal(PollStatus.Failed, outcome.Status);
        Assert.Contains(reason, outcome.Detail, StringComparison.Ordinal);
        lock (_ifNoneMatch)
        {
            Assert.Empty(_ifNoneMatch);
        }
    }

    [Fact]
    public async Task A_redirect_to_a_host_outside_the_allowlist_is_refused()
    {
        RedirectTo = "http://example.org/elsewhere";
        var (handler, _) = Create();
        using var __ = handler;
        var outcome = await handler.PollAsync(Context($"http://127.0.0.1:{_port}/moved"), CancellationToken.None);
        Assert.Equal(PollStatus.Failed, outcome.Status);
        Assert.Contains("redirect refused: host 'example.org'", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Https_only_unless_allowed_and_options_are_validated()
    {
        var (handler, _) = Create(o => o.AllowInsecureHttp = false);
        using var __ = handler;
        var outcome = await handler.PollAsync(Context($"http://127.0.0.1:{_port}/"), CancellationToken.None);
        Assert.Contains("scheme 'http' is not allowed", outcome.Detail, StringComparison.Ordinal);

        var bad = new HttpPollOptions { Timeout = TimeSpan.Zero, MaxRedirects = 11 };
        bad.AllowedHosts.Add("bad host!");
        var e = Assert.Throws<OptionsValidationException>(() => new HttpPollHandler(new MessageLog(fixture.Redis, _prefix), Options.Create(bad)));
        Assert.Equal(3, e.Failures.Count());
        Assert.Contains(e.Failures, f => f.StartsWith("PollLease:Http:Timeout = 00:00:00 is invalid", StringComparison.Ordinal));
    }
}
