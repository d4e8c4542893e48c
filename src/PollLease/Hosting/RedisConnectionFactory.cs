using Microsoft.Extensions.Logging;
using PollLease.Coordination;
using StackExchange.Redis;

namespace PollLease.Hosting;

/// <summary>
/// Builds the one long-lived multiplexer an instance uses: AbortOnConnectFail=false so a Redis that is down at
/// start-up (or later) is retried in the background, ClientName = instance id so <c>CLIENT LIST</c> shows who is
/// who, TLS forced for Azure Cache for Redis and Azure Managed Redis host names, and the configured hooks applied.
/// The connection string is never logged (it may hold a password or access key); only the endpoints are.
/// </summary>
internal static partial class RedisConnectionFactory
{
    /// <summary>Host-name suffixes of Azure Cache for Redis and Azure Managed Redis: both accept TLS connections only.</summary>
    private static readonly string[] AzureRedisHostSuffixes =
        [".redis.cache.windows.net", ".redis.azure.net", ".redisenterprise.cache.azure.net", ".redis.cache.chinacloudapi.cn", ".redis.cache.usgovcloudapi.net"];

    public static async Task<IConnectionMultiplexer> ConnectAsync(PollLeaseOptions options, PollLeaseRedisOptions hooks, ILogger logger)
    {
        var config = await BuildAsync(options, hooks).ConfigureAwait(false);
        var endpoints = string.Join(",", config.EndPoints.Select(e => e.ToString()));
        Connecting(logger, endpoints, config.Ssl);
        return await ConnectionMultiplexer.ConnectAsync(config).ConfigureAwait(false);
    }

    /// <summary>The connection options the multiplexer is created with (separate so tests can check them without connecting).</summary>
    internal static async Task<ConfigurationOptions> BuildAsync(PollLeaseOptions options, PollLeaseRedisOptions hooks)
    {
        var config = Parse(options);
        foreach (var hook in hooks.ConfigureConnection)
        {
            await hook(config).ConfigureAwait(false);
        }
        return config;
    }

    /// <summary>
    /// The connection string parsed, with PollLease's settings applied but no hook run: synchronous and free of I/O, so
    /// a start can check it before anything connects.
    /// </summary>
    internal static ConfigurationOptions Parse(PollLeaseOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.Redis))
        {
            throw new InvalidOperationException($"{PollLeaseOptions.SectionName}:Redis is not set: give a StackExchange.Redis connection string (for example 'localhost:6379' or 'name.redis.cache.windows.net:6380,ssl=true,password=...').");
        }
        ConfigurationOptions config;
        try
        {
            config = ConfigurationOptions.Parse(options.Redis);
        }
        catch (ArgumentException e)
        {
            // The exception text may quote the connection string; do not pass it on.
            throw new InvalidOperationException($"{PollLeaseOptions.SectionName}:Redis is not a valid StackExchange.Redis connection string ({e.GetType().Name}).");
        }
        config.AbortOnConnectFail = false;
        config.ClientName ??= options.InstanceId;
        if (config.EndPoints.Any(IsAzureRedis))
        {
            // Azure refuses plain connections; a connection string without ssl=true would only fail at run time.
            config.Ssl = true;
        }
        return config;
    }

    private static bool IsAzureRedis(System.Net.EndPoint endpoint) =>
        endpoint is System.Net.DnsEndPoint dns
        && AzureRedisHostSuffixes.Any(suffix => dns.Host.EndsWith(suffix, StringComparison.OrdinalIgnoreCase));

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Connecting to Redis: endpoints={Endpoints} tls={Tls}")]
    private static partial void Connecting(ILogger logger, string endpoints, bool tls);
}
