using StackExchange.Redis;

namespace PollLease.Hosting;

/// <summary>
/// Hooks on the Redis connection the hosting layer creates. Use <see cref="ConfigureConnection"/> for what a
/// connection string cannot say, e.g. Entra ID token authentication with Microsoft.Azure.StackExchangeRedis:
/// <code>
/// services.Configure&lt;PollLeaseRedisOptions&gt;(o => o.ConfigureConnection.Add(async c =>
///     await c.ConfigureForAzureWithTokenCredentialAsync(new DefaultAzureCredential())));
/// </code>
/// </summary>
public sealed class PollLeaseRedisOptions
{
    /// <summary>Callbacks run in order on the parsed <see cref="ConfigurationOptions"/> before connecting.</summary>
    public IList<Func<ConfigurationOptions, Task>> ConfigureConnection { get; } = [];
}
