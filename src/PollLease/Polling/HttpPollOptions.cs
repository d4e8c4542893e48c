using Microsoft.Extensions.Options;

namespace PollLease.Polling;

/// <summary>What the built-in <c>http</c> handler writes on a change.</summary>
public enum HttpStoreMode
{
    /// <summary>The response body (up to <see cref="HttpPollOptions.MaxBodyBytes"/>), with status, ETag and digest.</summary>
    Body,

    /// <summary>Only the status, ETag and SHA-256 digest of the body.</summary>
    Digest,
}

/// <summary>
/// The built-in <c>http</c> handler (configuration section <c>PollLease:Http</c>). Sessions live in Redis, so the
/// handler only fetches hosts listed here: a catalog entry must not turn the poller into a proxy.
/// </summary>
public sealed class HttpPollOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "PollLease:Http";

    /// <summary>Hosts a target (and every redirect) may point at: exact names, or <c>*.example.com</c> for subdomains. Empty refuses every target.</summary>
    public IList<string> AllowedHosts { get; } = [];

    /// <summary>Allow plain <c>http://</c> targets (default false: https only).</summary>
    public bool AllowInsecureHttp { get; set; }

    /// <summary>Per-request timeout (the poll's own deadline applies too). Default 10 s, 100 ms to 120 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Redirects followed (each to an allowed host). Default 3, 0 to 10.</summary>
    public int MaxRedirects { get; set; } = 3;

    /// <summary>Largest body read; a longer one fails the poll. Default 1 MiB, 1 byte to 64 MiB.</summary>
    public int MaxBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Store the body or only its digest on a change. Default <see cref="HttpStoreMode.Body"/>.</summary>
    public HttpStoreMode Store { get; set; } = HttpStoreMode.Body;
}

/// <summary>Validates <see cref="HttpPollOptions"/>.</summary>
internal sealed class HttpPollOptionsValidator : IValidateOptions<HttpPollOptions>
{
    public ValidateOptionsResult Validate(string? name, HttpPollOptions options)
    {
        var f = GetFailures(options);
        return f.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(f);
    }

    public static List<string> GetFailures(HttpPollOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        const string S = HttpPollOptions.SectionName;
        var f = new List<string>();
        if (options.Timeout < TimeSpan.FromMilliseconds(100) || options.Timeout > TimeSpan.FromSeconds(120))
        {
            f.Add($"{S}:Timeout = {options.Timeout} is invalid: it must be between 100 ms and 120 s.");
        }
        if (options.MaxRedirects is < 0 or > 10)
        {
            f.Add($"{S}:MaxRedirects = {options.MaxRedirects} is invalid: it must be between 0 and 10.");
        }
        if (options.MaxBodyBytes is < 1 or > 64 * 1024 * 1024)
        {
            f.Add($"{S}:MaxBodyBytes = {options.MaxBodyBytes} is invalid: it must be between 1 and 67108864.");
        }
        foreach (var host in options.AllowedHosts)
        {
            var name = host.StartsWith("*.", StringComparison.Ordinal) ? host[2..] : host;
            if (string.IsNullOrWhiteSpace(name) || Uri.CheckHostName(name) == UriHostNameType.Unknown)
            {
                f.Add($"{S}:AllowedHosts entry '{host}' is invalid: it must be a host name, an IP address or *.domain.");
            }
        }
        return f;
    }
}
