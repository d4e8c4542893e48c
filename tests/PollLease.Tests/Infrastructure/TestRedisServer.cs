using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Garnet;
using Garnet.server;
using StackExchange.Redis;

namespace PollLease.Tests.Infrastructure;

/// <summary>A Redis-compatible server a test controls: it can be stopped and started again (empty) on the same port.</summary>
public abstract class TestRedisServer : IAsyncDisposable
{
    protected TestRedisServer(int port) => Port = port;

    public int Port { get; }

    public abstract string Kind { get; }

    public bool IsRunning { get; protected set; }

    /// <summary>Connection string with AbortOnConnectFail=false so clients ride out restarts, as in production.</summary>
    public string ConnectionString => $"127.0.0.1:{Port},abortConnect=false,connectTimeout=2000,syncTimeout=2000,asyncTimeout=2000,connectRetry=1";

    public abstract Task StartAsync();

    public abstract Task StopAsync();

    public async Task RestartEmptyAsync()
    {
        await StopAsync();
        await StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        GC.SuppressFinalize(this);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>redis-server on PATH, unless hidden by <see cref="RedisServerBinary.HideVariable"/>.</summary>
    public static string? FindRedisServer() => RedisServerBinary.Find();

    /// <summary>Starts a dedicated server: redis-server when on PATH and <paramref name="preferGarnet"/> is false, else Garnet.</summary>
    public static async Task<TestRedisServer> StartNewAsync(bool preferGarnet)
    {
        var exe = preferGarnet ? null : FindRedisServer();
        for (var attempt = 0; ; attempt++)
        {
            TestRedisServer server = exe is null ? new GarnetTestServer(FreePort()) : new RedisServerProcess(exe, FreePort());
            try
            {
                await server.StartAsync();
                return server;
            }
            catch (Exception) when (attempt < 5)
            {
                // The free port was taken between probing and binding; try another.
                await server.StopAsync();
            }
        }
    }

    protected async Task WaitForPingAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        Exception? last = null;
        while (deadline.Elapsed < timeout)
        {
            try
            {
                using var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{Port},abortConnect=true,connectTimeout=500");
                await mux.GetDatabase().PingAsync();
                return;
            }
            catch (RedisConnectionException e)
            {
                last = e;
                await Task.Delay(20);
            }
        }
        throw new TimeoutException($"{Kind} on port {Port} did not answer PING within {timeout}.", last);
    }
}

/// <summary>redis-server as a child process, no persistence.</summary>
public sealed class RedisServerProcess(string executable, int port) : TestRedisServer(port)
{
    private Process? _process;

    public override string Kind => "redis-server";

    public override async Task StartAsync()
    {
        var psi = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no" })
        {
            psi.ArgumentList.Add(a);
        }
        _process = Process.Start(psi) ?? throw new InvalidOperationException("redis-server did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var ping = WaitForPingAsync(TimeSpan.FromSeconds(10));
        var exited = _process.WaitForExitAsync();
        if (await Task.WhenAny(ping, exited) == exited)
        {
            throw new InvalidOperationException($"redis-server exited at once (port {Port} taken?), code {_process.ExitCode}.");
        }
        await ping;
        IsRunning = true;
    }

    public override async Task StopAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        _process = null;
        IsRunning = false;
    }
}

/// <summary>Garnet in-process with Lua enabled (the scripts need it).</summary>
public sealed class GarnetTestServer(int port) : TestRedisServer(port)
{
    private GarnetServer? _server;

    public override string Kind => "garnet";

    public override async Task StartAsync()
    {
        _server = new GarnetServer(new GarnetServerOptions
        {
            EndPoints = [new IPEndPoint(IPAddress.Loopback, Port)],
            EnableLua = true,
            // Without it Garnet runs scripts without locking their keys: two lease cycles could both read a
            // fence before either writes it and hand out the same token.
            LuaTransactionMode = true,
            QuietMode = true,
            LuaOptions = new LuaOptions(null),
        });
        _server.Start();
        await WaitForPingAsync(TimeSpan.FromSeconds(10));
        IsRunning = true;
    }

    public override Task StopAsync()
    {
        _server?.Dispose();
        _server = null;
        IsRunning = false;
        return Task.CompletedTask;
    }
}
