using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace PollCtl.Manifest;

/// <summary>
/// A JSON state file that survives crashes: a save writes a temp file in the same
/// directory, fsyncs and closes it, keeps the previous file as <c>.bak</c>, then renames the temp into place,
/// so a reader sees the old file or the new one, never half of one. A load that finds the file corrupted
/// falls back to the <c>.bak</c> and restores it.
/// </summary>
internal sealed class StateFile
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };
    private readonly ILogger _logger;

    /// <summary>Creates a state file at <paramref name="path"/> (the directory is created on the first save).</summary>
    /// <param name="path">The file.</param>
    /// <param name="loggerFactory">Logging of saves, fallbacks and corruption.</param>
    public StateFile(string path, ILoggerFactory? loggerFactory = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Path = System.IO.Path.GetFullPath(path);
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PollCtl.Manifest");
    }

    /// <summary>The file's full path.</summary>
    public string Path { get; }

    /// <summary>The backup's full path.</summary>
    public string BackupPath => Path + ".bak";

    /// <summary>Saves <paramref name="value"/> atomically. On failure the previous state is untouched and the error is thrown.</summary>
    /// <typeparam name="T">The state's type.</typeparam>
    /// <param name="value">The state.</param>
    /// <param name="cancellationToken">Cancels before the rename.</param>
    public async Task SaveAsync<T>(T value, CancellationToken cancellationToken = default)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, Json);
        var directory = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(directory);
        if (File.Exists(Path))
        {
            // The previous good file becomes the backup, itself written atomically.
            await WriteAtomicallyAsync(BackupPath, await File.ReadAllBytesAsync(Path, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        await WriteAtomicallyAsync(Path, bytes, cancellationToken).ConfigureAwait(false);
        StateFileLog.Saved(_logger, Path, bytes.Length);
    }

    /// <summary>
    /// Loads the state: null when neither the file nor its backup exists. A corrupted file (not JSON, the wrong
    /// shape, or rejected by <paramref name="isValid"/>) falls back to the backup, which is restored with a
    /// warning; when both are bad, <see cref="StateCorruptedException"/> names the path.
    /// </summary>
    /// <typeparam name="T">The state's type.</typeparam>
    /// <param name="isValid">Extra shape checks beyond deserialization.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    public async Task<T?> LoadAsync<T>(Func<T, bool>? isValid = null, CancellationToken cancellationToken = default)
        where T : class
    {
        var (main, mainError) = await TryReadAsync(Path, isValid, cancellationToken).ConfigureAwait(false);
        if (main is not null)
        {
            return main;
        }
        var (backup, backupError) = await TryReadAsync(BackupPath, isValid, cancellationToken).ConfigureAwait(false);
        if (mainError is null && backupError is null && backup is null)
        {
            return null;
        }
        if (backup is not null)
        {
            StateFileLog.FellBack(_logger, Path, mainError ?? "missing");
            await WriteAtomicallyAsync(Path, await File.ReadAllBytesAsync(BackupPath, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            return backup;
        }
        StateFileLog.Corrupted(_logger, Path, mainError ?? "missing", backupError ?? "missing");
        throw new StateCorruptedException(Path, $"state file {Path} is corrupted ({mainError ?? "missing"}) and so is its backup ({backupError ?? "missing"})");
    }

    private static async Task<(T? Value, string? Error)> TryReadAsync<T>(string path, Func<T, bool>? isValid, CancellationToken cancellationToken)
        where T : class
    {
        if (!File.Exists(path))
        {
            return (null, null);
        }
        try
        {
            var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            var value = JsonSerializer.Deserialize<T>(bytes, Json);
            if (value is null || (isValid is not null && !isValid(value)))
            {
                return (null, "wrong shape");
            }
            return (value, null);
        }
        catch (JsonException e)
        {
            return (null, "not valid JSON: " + e.Message);
        }
    }

    private static async Task WriteAtomicallyAsync(string path, byte[] bytes, CancellationToken cancellationToken)
    {
        var temp = $"{path}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.WriteThrough))
            {
                await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            cancellationToken.ThrowIfCancellationRequested();
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
            throw;
        }
    }
}

/// <summary>The state file and its backup are both unreadable; nothing was changed.</summary>
internal sealed class StateCorruptedException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="path">The state file.</param>
    /// <param name="message">What is wrong.</param>
    public StateCorruptedException(string path, string message)
        : base(message) => Path = path;

    /// <summary>Creates the exception.</summary>
    public StateCorruptedException() => Path = "";

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong.</param>
    public StateCorruptedException(string message)
        : base(message) => Path = "";

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The cause.</param>
    public StateCorruptedException(string message, Exception innerException)
        : base(message, innerException) => Path = "";

    /// <summary>The state file.</summary>
    public string Path { get; }
}
