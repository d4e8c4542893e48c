using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using PollLease.ChaosTests.Harness;
using PollLease.Coordination;
using PollLease.Hosting;
using PollLease.Messages;
using PollLease.Polling;
using PollLease.Sessions;
using StackExchange.Redis;

namespace PollLease.ChaosTests.Security;

/// <summary>
/// TLS and an ACL user against a redis-server configured here (self-signed CA, the default user disabled, the
/// poller user limited to its fleet's keys), and no secret in any log line or pollctl output.
/// </summary>
public sealed class RedisSecurityTests : IClassFixture<ChaosServerFixture>
{
    private const string Password = "Pa55-word-for-the-poller-7f3e";
    private const string WrongPassword = "Wr0ng-secret-91c2";
    private const string Prefix = "sec";

    private static Func<int, string[]> TlsWithAcl(TlsCertificates certs) => port =>
    [
        "--port", "0", "--tls-port", port.ToString(CultureInfo.InvariantCulture),
        "--tls-cert-file", certs.ServerCertificate, "--tls-key-file", certs.ServerKey, "--tls-ca-cert-file", certs.CaCertificate,
        "--tls-auth-clients", "no",
        "--user", "default", "off",
        // Only its own fleet's keys and channels: a mistake in the key layout would be refused by Redis.
        "--user", "poller", "on", ">" + Password, "~{" + Prefix + "}:*", "&{" + Prefix + "}:*", "+@all",
    ];

    private static string Connection(RedisChild redis, string password) =>
        $"127.0.0.1:{redis.Port},ssl=true,sslHost=localhost,user=poller,password={password},abortConnect=false,connectTimeout=3000";

    [RedisServerFact("TLS and an ACL user given on redis-server's command line")]
    public async Task Tls_and_an_acl_user_hold_leases_and_poll_and_no_password_reaches_a_log_or_pollctl()
    {
        using var certs = TlsCertificates.Create();
        await using var redis = await RedisChild.StartAsync(TlsWithAcl(certs));
        var admin = ConfigurationOptions.Parse(Connection(redis, Password));
        admin.TrustIssuer(certs.CaCertificate);
        await using var adminMux = await ConnectionMultiplexer.ConnectAsync(admin);
        var catalog = new SessionCatalog(adminMux, Prefix);
        foreach (var id in new[] { "tls-1", "tls-2", "tls-3" })
        {
            await catalog.UpsertAsync(new PollSession(id, "record", PollSession.MinInterval, false, new Dictionary<string, string>()));
        }

        // The library's hosting path, as an application configures it: connection string + a TrustIssuer hook.
        var (host, logs) = BuildHost(Connection(redis, Password), certs.CaCertificate);
        using (host)
        {
            await host.StartAsync();
            var leases = host.Services.GetRequiredService<LeaseManager>();
            await WaitAsync(async () => leases.OwnedSessions().Count == 3 && (await new MessageLog(adminMux, Prefix).ReadAsync("tls-1")).Count > 0, "three leases over TLS and a poll record");
            await host.StopAsync();
        }
        AssertNoSecret(logs.GetSnapshot(), Password);

        // A wrong password: the instance fails closed (no lease), says why, and does not print the secret.
        var (bad, badLogs) = BuildHost(Connection(redis, WrongPassword), certs.CaCertificate);
        using (bad)
        {
            await bad.StartAsync();
            await WaitAsync(() => Task.FromResult(badLogs.GetSnapshot().Any(r => r.Level >= LogLevel.Warning)), "a warning about the failed connection");
            Assert.Empty(bad.Services.GetRequiredService<LeaseManager>().OwnedSessions());
            await bad.StopAsync();
        }
        AssertNoSecret(badLogs.GetSnapshot(), WrongPassword);

        // pollctl over TLS (the CA trusted through SSL_CERT_FILE): status works and prints no secret; a wrong
        // password is one line naming the endpoint only.
        var env = new Dictionary<string, string> { ["SSL_CERT_FILE"] = certs.CaCertificate };
        var (code, output) = await PollCtlAsync(env, "status", "--json", "--redis", Connection(redis, Password), "--prefix", Prefix);
        Assert.True(code == 0, output);
        Assert.Contains("tls-1", output, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, output, StringComparison.Ordinal);
        (code, output) = await PollCtlAsync(env, "status", "--redis", Connection(redis, WrongPassword), "--prefix", Prefix);
        Assert.Equal(1, code);
        Assert.DoesNotContain(WrongPassword, output, StringComparison.Ordinal);
        (code, output) = await PollCtlAsync(env, "run", "--plain", "--no-sample", "--redis", Connection(redis, WrongPassword), "--prefix", Prefix);
        Assert.Equal(1, code);
        Assert.DoesNotContain(WrongPassword, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connection_string_that_fails_to_parse_or_connect_is_never_echoed()
    {
        var (code, output) = await PollCtlAsync(new Dictionary<string, string>(), "status", "--redis", $"127.0.0.1:1,password={Password}", "--prefix", Prefix);
        Assert.Equal(1, code);
        Assert.Contains("cannot reach Redis at 127.0.0.1:1", output, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, output, StringComparison.Ordinal);

        var (host, logs) = BuildHost($"127.0.0.1:1,password={Password},ssl=maybe", caCertificate: null);
        using (host)
        {
            var e = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync());
            Assert.DoesNotContain(Password, e.ToString(), StringComparison.Ordinal);
        }
        AssertNoSecret(logs.GetSnapshot(), Password);
    }

    private static void AssertNoSecret(IReadOnlyList<FakeLogRecord> records, string secret)
    {
        Assert.NotEmpty(records);
        foreach (var r in records)
        {
            Assert.DoesNotContain(secret, r.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, r.Exception?.ToString() ?? "", StringComparison.Ordinal);
            foreach (var (key, value) in r.StructuredState ?? [])
            {
                Assert.DoesNotContain(secret, value ?? "", StringComparison.Ordinal);
            }
        }
    }

    private static (IHost Host, FakeLogCollector Logs) BuildHost(string connection, string? caCertificate)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PollLease:Redis"] = connection,
            ["PollLease:KeyPrefix"] = Prefix,
            ["PollLease:LeaseTtl"] = "00:00:03",
            ["PollLease:RenewInterval"] = "00:00:01",
            ["PollLease:RetryInterval"] = "00:00:01",
            ["PollLease:HeartbeatTtl"] = "00:00:03",
            ["PollLease:HeartbeatInterval"] = "00:00:01",
            ["PollLease:SafetyMargin"] = "00:00:00.300",
            ["PollLease:OperationTimeout"] = "00:00:01",
        });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Logging.AddFakeLogging();
        builder.Services.AddPollLease(builder.Configuration);
        builder.Services.AddPollHandler<RecordPollHandler>();
        if (caCertificate is not null)
        {
            builder.Services.Configure<PollLeaseRedisOptions>(o => o.ConfigureConnection.Add(c =>
            {
                c.TrustIssuer(caCertificate);
                return Task.CompletedTask;
            }));
        }
        var host = builder.Build();
        return (host, host.Services.GetRequiredService<FakeLogCollector>());
    }

    private static async Task<(int Code, string Output)> PollCtlAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var child = new PollCtlChild("pollctl", args, environment);
        await child.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (child.Process.ExitCode, child.Output);
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), "timed out waiting for " + what);
            await Task.Delay(50);
        }
    }
}
