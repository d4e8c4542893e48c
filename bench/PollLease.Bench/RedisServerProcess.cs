using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace PollLease.Bench;

/// <summary>The Redis the benchmarks run against: POLL_REDIS when set, else a throwaway redis-server child process.</summary>
internal sealed class RedisServerProcess : IDisposable
{
    private readonly Process? _process;

    private RedisServerProcess(string connectionString, Process? process, string description)
    {
        ConnectionString = connectionString;
        _process = process;
        Description = description;
    }

    public string ConnectionString { get; }

    public string Description { get; }

    /// <summary>True for the throwaway child process: the benchmarks may flush it between measurements.</summary>
    public bool OwnsServer => _process is not null;

    public static async Task<RedisServerProcess> StartAsync()
    {
        var configured = Environment.GetEnvironmentVariable("POLL_REDIS");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return new RedisServerProcess(configured, null, "POLL_REDIS");
        }
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var info = new ProcessStartInfo("redis-server", ["--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("redis-server is not installed (apt-get install -y redis-server) and POLL_REDIS is not set", e);
        }
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port).ConfigureAwait(false);
                var version = Process.Start(new ProcessStartInfo("redis-server", "--version") { RedirectStandardOutput = true })!;
                var text = (await version.StandardOutput.ReadToEndAsync().ConfigureAwait(false)).Trim();
                return new RedisServerProcess($"127.0.0.1:{port}", process, text);
            }
            catch (SocketException)
            {
                await Task.Delay(20).ConfigureAwait(false);
            }
        }
        process.Kill();
        throw new InvalidOperationException($"redis-server did not answer on port {port} within 10 s");
    }

    public void Dispose()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }
        _process?.Dispose();
    }
}
