using DotNet.Testcontainers.Builders;
using StackExchange.Redis;
using Testcontainers.Redis;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace PollLease.Tests.Infrastructure;

/// <summary>
/// A Redis for one test class. Each test takes a fresh key prefix (<see cref="NewPrefix"/>), so tests never see
/// each other's keys. Tests that stop or restart Redis take a dedicated server with <see cref="StartDedicatedAsync"/>.
/// The fixture says in the test output (an xunit diagnostic message) which server it ran on.
/// </summary>
public abstract class RedisFixture(IMessageSink diagnostics) : IAsyncLifetime
{
    private static int _prefixCounter;
    private TestRedisServer? _owned;
    private RedisContainer? _container;
    private ConnectionMultiplexer? _shared;

    public string ConnectionString { get; private set; } = "";

    /// <summary>Which server this is (redis-server, garnet, external, container).</summary>
    public string Kind { get; private set; } = "";

    protected abstract bool PreferGarnet { get; }

    /// <summary>One multiplexer shared by the class's tests (for reading and seeding keys).</summary>
    public IConnectionMultiplexer Redis => _shared ?? throw new InvalidOperationException("Fixture not initialised.");

    public async Task InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable("REDIS_CONNECTION");
        if (!PreferGarnet && !string.IsNullOrEmpty(external))
        {
            ConnectionString = external;
            Kind = "external";
        }
        else if (!PreferGarnet && Environment.GetEnvironmentVariable("POLL_TEST_REDIS") == "container" && await TryStartContainerAsync())
        {
            Kind = "container";
        }
        else
        {
            _owned = await TestRedisServer.StartNewAsync(PreferGarnet);
            ConnectionString = _owned.ConnectionString;
            Kind = _owned.Kind;
        }
        _shared = await ConnectionMultiplexer.ConnectAsync(ConnectionString);
        var version = _shared.GetServers()[0].Version;
        var said = $"{GetType().Name}: {Kind} {version} at {ConnectionString.Split(',')[0]}";
        if (!PreferGarnet && Kind == "garnet")
        {
            said += $" (fallback: {RedisServerBinary.MissingReason})";
        }
        diagnostics.OnMessage(new DiagnosticMessage(said));
        // A redis-server class must not pass quietly on another server when redis-server could have run it.
        if (!PreferGarnet && Kind == "garnet" && RedisServerBinary.Available)
        {
            throw new InvalidOperationException($"{GetType().Name} ran on Garnet although redis-server is available: {said}");
        }
    }

    public async Task<ConnectionMultiplexer> ConnectAsync(string? connectionString = null) =>
        await ConnectionMultiplexer.ConnectAsync(connectionString ?? ConnectionString);

    /// <summary>A key prefix no other test uses.</summary>
    public static string NewPrefix() => $"t{Interlocked.Increment(ref _prefixCounter)}-{Guid.NewGuid():N}"[..20];

    /// <summary>A server only this test uses, of the same kind as the fixture's when it can be started here.</summary>
    public Task<TestRedisServer> StartDedicatedAsync() => TestRedisServer.StartNewAsync(PreferGarnet);

    public async Task DisposeAsync()
    {
        if (_shared is not null)
        {
            await _shared.DisposeAsync();
        }
        if (_owned is not null)
        {
            await _owned.DisposeAsync();
        }
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }
    }

    private async Task<bool> TryStartContainerAsync()
    {
        try
        {
            _container = new RedisBuilder("redis:7.4").Build();
            await _container.StartAsync();
            ConnectionString = _container.GetConnectionString() + ",abortConnect=false";
            return true;
        }
        catch (Exception e) when (e is DockerUnavailableException or InvalidOperationException)
        {
            await Console.Error.WriteLineAsync($"POLL_TEST_REDIS=container but Docker is unavailable ({e.Message}); using a local server.");
            return false;
        }
    }
}

/// <summary>
/// REDIS_CONNECTION if set; else redis-server on PATH on a free loopback port; else (no redis-server, or
/// POLL_TEST_HIDE_REDIS_SERVER=1) in-process Garnet, said in the output.
/// </summary>
public sealed class RedisServerFixture(IMessageSink diagnostics) : RedisFixture(diagnostics)
{
    protected override bool PreferGarnet => false;
}

/// <summary>In-process Garnet with Lua.</summary>
public sealed class GarnetFixture(IMessageSink diagnostics) : RedisFixture(diagnostics)
{
    protected override bool PreferGarnet => true;
}
