using System.Globalization;
using System.Security.Cryptography;

namespace PollLease.Coordination;

/// <summary>
/// Instance ids: <c>hostname-bootUnixMs-random</c>, so a restarted process never reuses the id
/// (and the leases) of its previous life, and a human can still tell which machine an id belongs to.
/// </summary>
internal static class InstanceIdentity
{
    /// <summary>
    /// The configured id when <paramref name="configured"/> is set (validated by the options), otherwise a new
    /// generated one.
    /// </summary>
    /// <param name="configured">The configured id, or null/empty to generate one.</param>
    /// <param name="timeProvider">Clock for the boot timestamp.</param>
    public static string Resolve(string? configured, TimeProvider timeProvider) =>
        string.IsNullOrEmpty(configured) ? Generate(Environment.MachineName, timeProvider) : configured;

    /// <summary>Generates <c>hostname-bootUnixMs-random</c> with the host name reduced to key-safe characters.</summary>
    /// <param name="hostName">The machine name.</param>
    /// <param name="timeProvider">Clock for the boot timestamp.</param>
    public static string Generate(string hostName, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        var host = KeySafety.Sanitize(string.IsNullOrWhiteSpace(hostName) ? "host" : hostName.ToLowerInvariant(), 64);
        var boot = timeProvider.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
        var random = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        return $"{host}-{boot}-{random}";
    }

    /// <summary>The registry entry's metadata for humans (id, host, pid, start time, Azure instance id), as JSON.</summary>
    internal static string Metadata(string instanceId, TimeProvider timeProvider) =>
        System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["id"] = instanceId,
            ["host"] = Environment.MachineName,
            ["pid"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture),
            ["started"] = timeProvider.GetUtcNow().ToString("O", CultureInfo.InvariantCulture),
            ["azureInstanceId"] = Environment.GetEnvironmentVariable("WEBSITE_INSTANCE_ID") ?? "",
        });
}
