using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using PollLease.Coordination;
using PollLease.Hosting;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.Tests.Hosting;

public sealed class RedisConnectionFactoryTests
{
    private const string Secret = "s3cr3t-access-key-value";

    [Theory]
    [InlineData("mycache.redis.cache.windows.net:6380,password=" + Secret, true)]
    [InlineData("myredis.westeurope.redis.azure.net:10000,password=" + Secret, true)]
    [InlineData("MYCACHE.REDIS.CACHE.WINDOWS.NET:6380", true)]
    [InlineData("localhost:6379", false)]
    [InlineData("10.0.0.4:6379,ssl=true", true)]
    public async Task The_connection_never_aborts_on_a_failed_connect_is_named_after_the_instance_and_uses_tls_for_azure(string connection, bool tls)
    {
        var config = await RedisConnectionFactory.BuildAsync(new PollLeaseOptions { Redis = connection, InstanceId = "inst-1" }, new PollLeaseRedisOptions());

        Assert.False(config.AbortOnConnectFail);
        Assert.Equal("inst-1", config.ClientName);
        Assert.Equal(tls, config.Ssl);
    }

    [Fact]
    public async Task A_client_name_in_the_connection_string_is_kept()
    {
        var config = await RedisConnectionFactory.BuildAsync(new PollLeaseOptions { Redis = "localhost:6379,name=mine", InstanceId = "inst-1" }, new PollLeaseRedisOptions());
        Assert.Equal("mine", config.ClientName);
    }

    [Fact]
    public async Task The_configuration_hooks_run_in_order_after_the_defaults_as_an_Entra_ID_token_hook_would()
    {
        var hooks = new PollLeaseRedisOptions();
        var seen = new List<string>();
        hooks.ConfigureConnection.Add(c =>
        {
            seen.Add($"first tls={c.Ssl} name={c.ClientName}");
            c.User = "app-object-id";
            return Task.CompletedTask;
        });
        hooks.ConfigureConnection.Add(async c =>
        {
            await Task.Yield();
            seen.Add($"second user={c.User}");
            c.Password = "token";
        });

        var config = await RedisConnectionFactory.BuildAsync(new PollLeaseOptions { Redis = "x.redis.azure.net:10000", InstanceId = "inst-1" }, hooks);

        Assert.Equal(["first tls=True name=inst-1", "second user=app-object-id"], seen);
        Assert.Equal("token", config.Password);
    }

    [Fact]
    public async Task A_malformed_connection_string_is_reported_without_quoting_it()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => RedisConnectionFactory.BuildAsync(
            new PollLeaseOptions { Redis = $"host:6379,password={Secret},bogus=1", InstanceId = "inst-1" }, new PollLeaseRedisOptions()));
        Assert.Contains("PollLease:Redis", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_host_whose_Redis_is_unreachable_starts_retries_and_stops_without_logging_the_password()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var settings = GenericTestHost.Settings($"127.0.0.1:{port},password={Secret},connectTimeout=200,asyncTimeout=500,syncTimeout=500", RedisFixture.NewPrefix(), "unreachable-1");
        using var host = GenericTestHost.Build(settings, services =>
            services.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddFakeLogging()));
        var logs = host.Services.GetFakeLogCollector();

        await host.StartAsync();
        await Eventually.TrueAsync(() => logs.GetSnapshot().Count(r => r.Message.StartsWith("Lease cycle failed", StringComparison.Ordinal)) >= 2,
            TimeSpan.FromSeconds(20), "the instance keeps retrying while Redis is unreachable");
        await host.StopAsync();

        var records = logs.GetSnapshot();
        Assert.Contains(records, r => r.Message.StartsWith("Connecting to Redis", StringComparison.Ordinal));
        foreach (var r in records)
        {
            Assert.DoesNotContain(Secret, r.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(Secret, r.Exception?.ToString() ?? "", StringComparison.Ordinal);
            Assert.DoesNotContain(Secret, string.Join(";", r.StructuredState?.Select(kv => kv.Value) ?? []), StringComparison.Ordinal);
        }
        Assert.IsType<ConnectionMultiplexer>(host.Services.GetRequiredService<IConnectionMultiplexer>());
    }
}
