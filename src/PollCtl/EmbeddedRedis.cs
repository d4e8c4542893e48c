using System.Net;
using Garnet;
using Garnet.server;
using StackExchange.Redis;

namespace PollCtl;

/// <summary>
/// The Redis pollctl talks to: the one named by --redis or POLL_REDIS, or else an embedded Garnet server with Lua
/// on 127.0.0.1. When something already answers on the embedded port (another `pollctl run`), it is reused, so a
/// second terminal joins the first fleet.
/// </summary>
internal sealed class EmbeddedRedis : IDisposable
{
    public const int DefaultPort = 6380;
    private GarnetServer? _server;

    private EmbeddedRedis(string connectionString, string description, GarnetServer? server)
    {
        ConnectionString = connectionString;
        Description = description;
        _server = server;
    }

    public string ConnectionString { get; }

    /// <summary>What to tell the user (never the password).</summary>
    public string Description { get; }

    /// <summary>True when this process started the server a moment ago: nothing was ever stored in it before.</summary>
    public bool StartedHere => _server is not null;

    public static string? Configured(string? option) =>
        !string.IsNullOrWhiteSpace(option) ? option : Environment.GetEnvironmentVariable("POLL_REDIS") is { Length: > 0 } env ? env : null;

    public static async Task<EmbeddedRedis> ResolveAsync(string? configured, int port, bool allowEmbedded)
    {
        if (configured is not null)
        {
            return new EmbeddedRedis(configured, "Redis at " + Endpoints(configured), null);
        }
        var local = $"127.0.0.1:{port}";
        if (await AnswersAsync(local).ConfigureAwait(false))
        {
            return new EmbeddedRedis(local + ",abortConnect=false", $"existing server at {local} (joined)", null);
        }
        if (!allowEmbedded)
        {
            throw new PollCtlException($"no Redis configured and nothing listening at {local}: pass --redis <connection> or set POLL_REDIS");
        }
        var server = StartGarnet(port);
        return new EmbeddedRedis(local + ",abortConnect=false", $"embedded Garnet at {local}", server);
    }

    /// <summary>Starts Garnet with Lua on 127.0.0.1:<paramref name="port"/>, in memory only.</summary>
    /// <exception cref="PollCtlException">The port is taken or the server cannot start.</exception>
    public static GarnetServer StartGarnet(int port)
    {
        var options = new GarnetServerOptions
        {
            EndPoints = [new IPEndPoint(IPAddress.Loopback, port)],
            EnableLua = true,
            // Without it Garnet runs scripts without locking their keys: two lease cycles could both read a
            // fence before either writes it and hand out the same token.
            LuaTransactionMode = true,
            QuietMode = true,
            LuaOptions = new LuaOptions(null),
        };
        var server = new GarnetServer(options);
        try
        {
            server.Start();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or InvalidOperationException)
        {
            server.Dispose();
            throw new PollCtlException($"could not start the embedded Garnet server on 127.0.0.1:{port}: {e.Message}");
        }
        return server;
    }

    public static string Endpoints(string connectionString)
    {
        try
        {
            return string.Join(",", ConfigurationOptions.Parse(connectionString).EndPoints.Select(e => e.ToString()));
        }
        catch (ArgumentException)
        {
            return "(unparseable connection string)";
        }
    }

    public void Dispose()
    {
        _server?.Dispose();
        _server = null;
    }

    private static async Task<bool> AnswersAsync(string endpoint)
    {
        try
        {
            using var mux = await ConnectionMultiplexer.ConnectAsync($"{endpoint},abortConnect=true,connectTimeout=300,connectRetry=0").ConfigureAwait(false);
            await mux.GetDatabase().PingAsync().ConfigureAwait(false);
            return true;
        }
        catch (RedisConnectionException)
        {
            return false;
        }
    }
}

/// <summary>A failure pollctl reports as one line on stderr with exit code 1.</summary>
internal sealed class PollCtlException(string message) : Exception(message);
