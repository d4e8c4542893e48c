using System.Runtime.InteropServices;

namespace PollCtl;

internal sealed record ServerSettings(int Port);

/// <summary>
/// `pollctl server`: the embedded Garnet server (Lua on, scripts transactional) without a fleet, for `func start`,
/// for other tools and for test suites that need a server process they can kill, pause and restart (empty: it keeps
/// nothing on disk). It prints one ready line and runs until SIGINT or SIGTERM.
/// </summary>
internal static class ServerCommand
{
    public static async Task<int> RunAsync(ServerSettings settings, CancellationToken cancellationToken)
    {
        if (settings.Port is < 1 or > 65535)
        {
            throw new ArgumentException($"--port = {settings.Port} is invalid: it must be between 1 and 65535.");
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var server = EmbeddedRedis.StartGarnet(settings.Port);
        await Console.Out.WriteLineAsync($"pollctl: embedded Garnet listening on 127.0.0.1:{settings.Port} (in memory, Lua on); Ctrl+C stops it").ConfigureAwait(false);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // SIGINT or SIGTERM: the normal way to stop a server.
        }
        await Console.Out.WriteLineAsync("pollctl: server stopped").ConfigureAwait(false);
        return 0;
    }
}
