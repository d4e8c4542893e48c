using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace PollCtl.Manifest;

/// <summary>Who holds a <see cref="StateFileLock"/>.</summary>
/// <param name="Pid">Process id.</param>
/// <param name="Host">Host name.</param>
/// <param name="Acquired">When it was taken.</param>
internal sealed record StateFileLockHolder(int Pid, string Host, DateTimeOffset Acquired);

/// <summary>
/// Serializes writers of a state file across processes: a lock file created
/// exclusively next to it, holding PID, host name and time. A lock whose process is dead on this host, or that
/// is older than the stale threshold, is broken with a warning.
/// </summary>
internal sealed class StateFileLock : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly ILogger _logger;
    private readonly StateFileLockHolder _me;
    private readonly long _acquiredAt;
    private int _released;

    private StateFileLock(string path, StateFileLockHolder me, ILogger logger)
    {
        LockPath = path;
        _me = me;
        _logger = logger;
        _acquiredAt = Stopwatch.GetTimestamp();
    }

    /// <summary>The lock file.</summary>
    public string LockPath { get; }

    /// <summary>Takes the lock for <paramref name="statePath"/>, waiting up to <paramref name="timeout"/>.</summary>
    /// <param name="statePath">The state file; the lock is <c>statePath + ".lock"</c>.</param>
    /// <param name="timeout">How long to wait for another holder.</param>
    /// <param name="staleAfter">A lock older than this is broken (default 10 minutes).</param>
    /// <param name="loggerFactory">Logging: acquired, released with held time, wait started, stale broken, timeout.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="StateFileLockedException">Still held by another process after <paramref name="timeout"/>.</exception>
    public static async Task<StateFileLock> AcquireAsync(string statePath, TimeSpan timeout, TimeSpan? staleAfter = null, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(statePath);
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollCtl.Manifest");
        var path = Path.GetFullPath(statePath) + ".lock";
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var stale = staleAfter ?? TimeSpan.FromMinutes(10);
        var started = Stopwatch.GetTimestamp();
        var waiting = false;
        while (true)
        {
            var me = new StateFileLockHolder(Environment.ProcessId, Environment.MachineName, DateTimeOffset.UtcNow);
            try
            {
                await using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 4096, FileOptions.WriteThrough))
                {
                    await JsonSerializer.SerializeAsync(stream, me, Json, cancellationToken).ConfigureAwait(false);
                    stream.Flush(flushToDisk: true);
                }
                var waited = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                StateFileLog.LockAcquired(logger, path, waited);
                return new StateFileLock(path, me, logger);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Held by someone: see below.
            }
            var holder = await ReadHolderAsync(path, cancellationToken).ConfigureAwait(false);
            // An empty or unreadable lock is usually one being written right now: only an old one is abandoned.
            var abandoned = holder is null
                ? File.Exists(path) && DateTime.UtcNow - File.GetLastWriteTimeUtc(path) > TimeSpan.FromSeconds(5)
                : IsAbandoned(holder, stale);
            if (abandoned)
            {
                StateFileLog.LockBroken(logger, path, holder?.Pid ?? 0, holder?.Host ?? "?", holder?.Acquired ?? default);
                File.Delete(path);
                continue;
            }
            if (holder is null)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(10), cancellationToken).ConfigureAwait(false);
                continue;
            }
            if (!waiting)
            {
                StateFileLog.LockWaiting(logger, path, holder.Pid, holder.Host);
                waiting = true;
            }
            if (Stopwatch.GetElapsedTime(started) >= timeout)
            {
                StateFileLog.LockTimedOut(logger, path, holder.Pid, holder.Host, timeout.TotalSeconds);
                throw new StateFileLockedException(path, holder, timeout);
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Releases the lock (deletes the file if it is still this holder's).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _released, 1) == 1)
        {
            return;
        }
        var holder = await ReadHolderAsync(LockPath, CancellationToken.None).ConfigureAwait(false);
        if (holder == _me)
        {
            File.Delete(LockPath);
        }
        var held = Stopwatch.GetElapsedTime(_acquiredAt).TotalMilliseconds;
        StateFileLog.LockReleased(_logger, LockPath, held);
    }

    private static bool IsAbandoned(StateFileLockHolder holder, TimeSpan stale)
    {
        if (DateTimeOffset.UtcNow - holder.Acquired > stale)
        {
            return true;
        }
        if (!string.Equals(holder.Host, Environment.MachineName, StringComparison.Ordinal))
        {
            return false;
        }
        try
        {
            using var process = Process.GetProcessById(holder.Pid);
            return process.HasExited;
        }
        catch (ArgumentException)
        {
            return true;
        }
    }

    private static async Task<StateFileLockHolder?> ReadHolderAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            return bytes.Length == 0 ? null : JsonSerializer.Deserialize<StateFileLockHolder>(bytes, Json);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>Another process held the state lock for longer than the timeout.</summary>
internal sealed class StateFileLockedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="lockPath">The lock file.</param>
    /// <param name="holder">Who holds it.</param>
    /// <param name="timeout">How long the caller waited.</param>
    public StateFileLockedException(string lockPath, StateFileLockHolder holder, TimeSpan timeout)
        : base($"state locked: {lockPath} is held by pid {holder?.Pid} on {holder?.Host} since {holder?.Acquired:O}; waited {timeout.TotalSeconds:0.#} s")
    {
        LockPath = lockPath;
        Holder = holder;
    }

    /// <summary>Creates the exception.</summary>
    public StateFileLockedException() => LockPath = "";

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public StateFileLockedException(string message)
        : base(message) => LockPath = "";

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public StateFileLockedException(string message, Exception innerException)
        : base(message, innerException) => LockPath = "";

    /// <summary>The lock file.</summary>
    public string LockPath { get; }

    /// <summary>Who holds it.</summary>
    public StateFileLockHolder? Holder { get; }
}
