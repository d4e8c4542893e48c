using Microsoft.Extensions.Options;
using PollLease.Coordination;

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
    [OptionHostList(SectionName)]
    public IList<string> AllowedHosts { get; } = [];

    /// <summary>Allow plain <c>http://</c> targets (default false: https only).</summary>
    public bool AllowInsecureHttp { get; set; }

    /// <summary>Per-request timeout (the poll's own deadline applies too). Default 10 s, 100 ms to 120 s.</summary>
    [OptionRange(SectionName, "it must be between 100 ms and 120 s", Minimum = "00:00:00.100", Maximum = "00:02:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Redirects followed (each to an allowed host). Default 3, 0 to 10.</summary>
    [OptionRange(SectionName, "it must be between 0 and 10", Minimum = "0", Maximum = "10")]
    public int MaxRedirects { get; set; } = 3;

    /// <summary>Largest body read; a longer one fails the poll. Default 1 MiB, 1 byte to 64 MiB.</summary>
    [OptionRange(SectionName, "it must be between 1 and 67108864", Minimum = "1", Maximum = "67108864")]
    public int MaxBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Store the body or only its digest on a change. Default <see cref="HttpStoreMode.Body"/>.</summary>
    public HttpStoreMode Store { get; set; } = HttpStoreMode.Body;
}

/// <summary>Validates <see cref="HttpPollOptions"/> (generated from its rules); each failure names the field, the value and the rule.</summary>
[OptionsValidator]
internal sealed partial class HttpPollOptionsValidator : IValidateOptions<HttpPollOptions>
{
    public static List<string> GetFailures(HttpPollOptions options) => OptionRule.Failures(new HttpPollOptionsValidator().Validate(null, options));
}
