using System.Net;
using System.Net.Sockets;

namespace PollLease.ChaosTests.Harness;

/// <summary>
/// A TCP proxy in front of Redis that the test controls. <see cref="Blackhole"/> stops forwarding in both
/// directions (bytes wait, as they would behind a partition while TCP retransmits), <see cref="Delay"/> holds
/// every chunk for a while, <see cref="Heal"/> forwards again, delivering what waited. New connections are
/// accepted in every mode; under a blackhole they hang like the old ones.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _upstream;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _pumps = [];
    private readonly List<TcpClient> _clients = [];
    private readonly Task _accept;
    private volatile TaskCompletionSource _open = NewOpen(opened: true);
    private TimeSpan _delay;
    private long _chunksToClients;

    public TcpProxy(int upstreamPort)
    {
        _upstream = new IPEndPoint(IPAddress.Loopback, upstreamPort);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = AcceptLoopAsync();
    }

    public int Port { get; }

    /// <summary>Chunks delivered from Redis to clients so far: a reply has come back when this grows.</summary>
    public long ChunksToClients => Interlocked.Read(ref _chunksToClients);

    public string ConnectionString => $"127.0.0.1:{Port},abortConnect=false,connectTimeout=2000,syncTimeout=3000,asyncTimeout=3000";

    public void Blackhole()
    {
        if (_open.Task.IsCompleted)
        {
            _open = NewOpen(opened: false);
        }
    }

    public void Delay(TimeSpan delay)
    {
        _delay = delay;
        _open.TrySetResult();
    }

    public void Heal()
    {
        _delay = TimeSpan.Zero;
        _open.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        _open.TrySetResult();
        lock (_clients)
        {
            foreach (var c in _clients)
            {
                c.Dispose();
            }
        }
        Task[] pumps;
        lock (_pumps)
        {
            pumps = [.. _pumps, _accept];
        }
        try
        {
            await Task.WhenAll(pumps);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // Torn down on purpose.
        }
        _stop.Dispose();
    }

    private static TaskCompletionSource NewOpen(bool opened)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (opened)
        {
            tcs.SetResult();
        }
        return tcs;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            var upstream = new TcpClient();
            try
            {
                await upstream.ConnectAsync(_upstream, _stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                // Redis is down: the client sees its connection close, as it would without a proxy.
                client.Dispose();
                upstream.Dispose();
                continue;
            }
            lock (_clients)
            {
                _clients.Add(client);
                _clients.Add(upstream);
            }
            lock (_pumps)
            {
                _pumps.RemoveAll(t => t.IsCompleted);
                _pumps.Add(PumpAsync(client, upstream, toClient: false));
                _pumps.Add(PumpAsync(upstream, client, toClient: true));
            }
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to, bool toClient)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            var source = from.GetStream();
            var target = to.GetStream();
            while (true)
            {
                var n = await source.ReadAsync(buffer, _stop.Token);
                if (n == 0)
                {
                    break;
                }
                await _open.Task.WaitAsync(_stop.Token);
                var delay = _delay;
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, _stop.Token);
                }
                // A blackhole may have started while this chunk was delayed.
                await _open.Task.WaitAsync(_stop.Token);
                await target.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
                if (toClient)
                {
                    Interlocked.Increment(ref _chunksToClients);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // The other side closed or the proxy stopped.
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }
}
