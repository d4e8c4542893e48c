using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using PollLease.Tests.Infrastructure;
using StackExchange.Redis;

namespace PollLease.ChaosTests.Harness;

/// <summary>
/// A Redis server as a child process the test controls: killed (-9), paused (SIGSTOP), restarted empty, or (redis-server
/// only) restarted with the data it had at its last SAVE (same port, same directory). It is redis-server when that is
/// on PATH (and not hidden by POLL_TEST_HIDE_REDIS_SERVER), else the project's own embedded Garnet run as
/// `pollctl server`, so the suite needs nothing but the .NET SDK. Extra arguments (TLS, ACLs) need redis-server.
/// </summary>
public sealed class RedisChild : IAsyncDisposable
{
    private readonly string? _redisServer;
    private readonly Func<int, string[]> _extraArgs;
    private Process? _process;

    private RedisChild(string? redisServer, int port, string directory, Func<int, string[]> extraArgs)
    {
        _redisServer = redisServer;
        Port = port;
        Directory = directory;
        _extraArgs = extraArgs;
    }

    public int Port { get; }

    /// <summary>True while the child process runs (false once killed).</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Which server this is: "redis-server" or "garnet (pollctl server)".</summary>
    public string Kind => _redisServer is null ? "garnet (pollctl server)" : "redis-server";

    /// <summary>Only redis-server keeps data across a restart (SAVE and its RDB file).</summary>
    public bool CanRestartWithData => _redisServer is not null;

    /// <summary>The process id, for SIGSTOP and SIGCONT.</summary>
    public int Pid => _process?.Id ?? throw new InvalidOperationException("The server is not running.");

    /// <summary>Working directory: the RDB file lives here.</summary>
    public string Directory { get; }

    /// <summary>Clients ride out restarts (AbortOnConnectFail=false), as in production.</summary>
    public string ConnectionString => $"127.0.0.1:{Port},abortConnect=false,connectTimeout=2000,syncTimeout=3000,asyncTimeout=3000";

    /// <summary>Starts a plain server on a free port.</summary>
    public static Task<RedisChild> StartAsync() => StartAsync(_ => []);

    /// <summary>
    /// Starts a server with extra arguments given the free port, e.g. ACL users, or TLS on that port with
    /// <c>--port 0 --tls-port {port}</c> (later arguments win).
    /// </summary>
    public static async Task<RedisChild> StartAsync(Func<int, string[]> extraArgs)
    {
        var exe = RedisServerBinary.Find();
        if (exe is null && extraArgs(0).Length > 0)
        {
            throw new InvalidOperationException($"this server needs redis-server arguments ({string.Join(' ', extraArgs(0))}): {RedisServerBinary.MissingReason}.");
        }
        for (var attempt = 0; ; attempt++)
        {
            var dir = Path.Combine(Path.GetTempPath(), "pollchaos-" + Guid.NewGuid().ToString("N")[..12]);
            System.IO.Directory.CreateDirectory(dir);
            var server = new RedisChild(exe, FreePort(), dir, extraArgs);
            try
            {
                await server.StartProcessAsync();
                return server;
            }
            catch (InvalidOperationException) when (attempt < 5)
            {
                // The probed port was taken before redis-server bound it: try another.
                await server.DisposeAsync();
            }
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>SIGKILL: no save, no goodbye; clients see the connection drop.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        _process = null;
    }

    /// <summary>
    /// SIGSTOP: the server answers nothing and, as a replica, receives nothing from its master until
    /// <see cref="Resume"/>; what its master writes meanwhile is missing from it.
    /// </summary>
    public void Suspend() => Signal("-STOP");

    /// <summary>SIGCONT after <see cref="Suspend"/>.</summary>
    public void Resume() => Signal("-CONT");

    /// <summary>Kill -9 and start again with nothing: the RDB file is removed first.</summary>
    public async Task RestartEmptyAsync()
    {
        await KillAsync();
        File.Delete(Path.Combine(Directory, "dump.rdb"));
        await StartWithRetryAsync();
    }

    /// <summary>SAVE, kill -9, start again on the same port and directory: the data comes back from the RDB file.</summary>
    public async Task RestartWithDataAsync()
    {
        if (!CanRestartWithData)
        {
            throw new NotSupportedException("Only redis-server can restart with its data here: the embedded Garnet server keeps nothing on disk.");
        }
        using (var mux = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{Port},allowAdmin=true,abortConnect=true"))
        {
            await mux.GetDatabase().ExecuteAsync("SAVE");
        }
        await KillAsync();
        await StartWithRetryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open by a dying child: the temp directory is cleaned up by the OS later.
        }
    }

    private void Signal(string signal)
    {
        var pid = (_process ?? throw new InvalidOperationException($"redis-server on port {Port} is not running.")).Id;
        using var kill = Process.Start("kill", [signal, pid.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill {signal} {pid} failed with {kill.ExitCode}.");
        }
    }

    private async Task StartWithRetryAsync()
    {
        // The port was ours a moment ago; only a slow socket teardown can briefly hold it.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await StartProcessAsync();
                return;
            }
            catch (InvalidOperationException) when (attempt < 20)
            {
                await Task.Delay(100);
            }
        }
    }

    private async Task StartProcessAsync()
    {
        ProcessStartInfo psi;
        string readyLine;
        if (_redisServer is not null)
        {
            psi = new ProcessStartInfo(_redisServer) { WorkingDirectory = Directory };
            string[] args = ["--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", Directory, "--dbfilename", "dump.rdb", "--protected-mode", "no"];
            foreach (var a in args.Concat(_extraArgs(Port)))
            {
                psi.ArgumentList.Add(a);
            }
            readyLine = "Ready to accept connections";
        }
        else
        {
            psi = new ProcessStartInfo("dotnet") { WorkingDirectory = Directory };
            foreach (var a in new[] { BuiltProject.Dll(Path.Combine("src", "PollCtl"), "pollctl"), "server", "--port", Port.ToString(CultureInfo.InvariantCulture) })
            {
                psi.ArgumentList.Add(a);
            }
            readyLine = "embedded Garnet listening on";
        }
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"{Kind} did not start.");
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        var ready = Stopwatch.StartNew();
        // A .NET process on a loaded machine takes far longer to start than redis-server.
        while (ready.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (process.HasExited)
            {
                string text;
                lock (output)
                {
                    text = output.ToString();
                }
                _process = null;
                process.Dispose();
                throw new InvalidOperationException($"{Kind} exited at once on port {Port}: {text.Trim()}");
            }
            string log;
            lock (output)
            {
                log = output.ToString();
            }
            if (log.Contains(readyLine, StringComparison.Ordinal))
            {
                return;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException($"{Kind} on port {Port} was not ready within 60 s.");
    }
}
