using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using PollCtl.Manifest;
using PollLease.Sessions;

namespace PollLease.Tests.Manifest;

public sealed class StateFileTests : IDisposable
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);
    private readonly string _dir = Directory.CreateTempSubdirectory("pollstate-").FullName;
    private readonly FakeLogCollector _logs = new();
    private readonly ILoggerFactory _loggers;

    public StateFileTests() => _loggers = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(_logs)).SetMinimumLevel(LogLevel.Debug));

    public void Dispose()
    {
        _loggers.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static ApplyState State(params string[] ids) => new(1, ids, DateTimeOffset.UnixEpoch);

    private static bool Valid(ApplyState s) => s.Version == 1 && s.Created is not null;

    [Fact]
    public async Task Save_writes_valid_json_keeps_a_backup_and_leaves_no_temp_files()
    {
        var file = new StateFile(PathOf("state.json"), _loggers);
        await file.SaveAsync(State("a"));
        await file.SaveAsync(State("a", "b"));

        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(file.Path));
        Assert.Equal(2, doc.RootElement.GetProperty("created").GetArrayLength());
        Assert.True(File.Exists(file.BackupPath));
        Assert.Equal(["a"], (await new StateFile(file.BackupPath).LoadAsync<ApplyState>(Valid))!.Created);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
        Assert.Equal(["a", "b"], (await file.LoadAsync<ApplyState>(Valid))!.Created);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("garbage")]
    [InlineData("wrong-shape")]
    public async Task A_corrupted_file_falls_back_to_the_backup_and_restores_it_with_a_warning(string damage)
    {
        var file = new StateFile(PathOf("state.json"), _loggers);
        await file.SaveAsync(State("a"));
        await file.SaveAsync(State("a", "b"));
        var bytes = await File.ReadAllBytesAsync(file.Path);
        await File.WriteAllBytesAsync(file.Path, damage switch
        {
            "truncated" => bytes[..(bytes.Length / 2)],
            "garbage" => [0x00, 0xff, 0x13, 0x37, 0x80],
            _ => "{\"version\":7,\"something\":[1,2]}"u8.ToArray(),
        });

        var loaded = await file.LoadAsync<ApplyState>(Valid);

        Assert.Equal(["a"], loaded!.Created);
        Assert.Equal(["a"], (await file.LoadAsync<ApplyState>(Valid))!.Created);
        Assert.Contains(_logs.GetSnapshot(), r => r.Level == LogLevel.Warning && r.Message.Contains("restored from backup", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Both_files_bad_is_a_typed_error_naming_the_path()
    {
        var file = new StateFile(PathOf("state.json"), _loggers);
        await File.WriteAllTextAsync(file.Path, "{");
        await File.WriteAllTextAsync(file.BackupPath, "[]");

        var e = await Assert.ThrowsAsync<StateCorruptedException>(() => file.LoadAsync<ApplyState>(Valid));

        Assert.Equal(file.Path, e.Path);
        Assert.Contains(file.Path, e.Message, StringComparison.Ordinal);
        Assert.Contains(_logs.GetSnapshot(), r => r.Level == LogLevel.Error);
    }

    [Fact]
    public async Task A_state_file_deleted_at_runtime_is_recreated_and_a_missing_one_loads_as_null()
    {
        var file = new StateFile(PathOf("sub/state.json"), _loggers);
        Assert.Null(await file.LoadAsync<ApplyState>(Valid));
        await file.SaveAsync(State("a"));
        File.Delete(file.Path);
        File.Delete(file.BackupPath);

        await file.SaveAsync(State("b"));

        Assert.Equal(["b"], (await file.LoadAsync<ApplyState>(Valid))!.Created);
    }

    [Fact]
    public async Task A_failed_save_leaves_the_previous_state_untouched()
    {
        var file = new StateFile(PathOf("state.json"), _loggers);
        await file.SaveAsync(State("a"));
        // The final rename cannot replace a directory: the save fails after writing its temp file.
        File.Move(file.Path, PathOf("moved.json"));
        Directory.CreateDirectory(file.Path);
        File.Move(PathOf("moved.json"), file.BackupPath, overwrite: true);

        await Assert.ThrowsAnyAsync<IOException>(() => file.SaveAsync(State("b")));

        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
        Assert.Equal(["a"], (await new StateFile(file.BackupPath).LoadAsync<ApplyState>(Valid))!.Created);
    }

    [Fact]
    public async Task A_held_lock_times_out_naming_the_holder_and_a_second_locker_waits()
    {
        var state = PathOf("state.json");
        var first = await StateFileLock.AcquireAsync(state, TimeSpan.FromSeconds(1), loggerFactory: _loggers);

        var e = await Assert.ThrowsAsync<StateFileLockedException>(() => StateFileLock.AcquireAsync(state, TimeSpan.FromMilliseconds(200), loggerFactory: _loggers));
        Assert.Equal(Environment.ProcessId, e.Holder!.Pid);
        Assert.Contains($"held by pid {Environment.ProcessId} on {Environment.MachineName}", e.Message, StringComparison.Ordinal);

        var waiting = StateFileLock.AcquireAsync(state, TimeSpan.FromSeconds(30), loggerFactory: _loggers);
        await Infrastructure.Eventually.TrueAsync(() => _logs.GetSnapshot().Count(r => r.Message.StartsWith("State lock wait started", StringComparison.Ordinal)) >= 2, TimeSpan.FromSeconds(10), "the second locker waits");
        Assert.False(waiting.IsCompleted);
        await first.DisposeAsync();
        await using var second = await waiting;
        var messages = _logs.GetSnapshot().Select(r => r.Message).ToList();
        Assert.Contains(messages, m => m.StartsWith("State lock released", StringComparison.Ordinal) && m.Contains("heldMs=", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.StartsWith("State lock timed out", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_lock_left_by_a_dead_process_or_too_old_is_broken_with_a_warning()
    {
        var state = PathOf("state.json");
        using var dead = Process.Start(new ProcessStartInfo("true"))!;
        await dead.WaitForExitAsync();
        await File.WriteAllTextAsync(state + ".lock", JsonSerializer.Serialize(new StateFileLockHolder(dead.Id, Environment.MachineName, DateTimeOffset.UtcNow), Web));

        await (await StateFileLock.AcquireAsync(state, TimeSpan.FromSeconds(1), loggerFactory: _loggers)).DisposeAsync();

        await File.WriteAllTextAsync(state + ".lock", JsonSerializer.Serialize(new StateFileLockHolder(1, "another-host", DateTimeOffset.UtcNow.AddHours(-1)), Web));
        await (await StateFileLock.AcquireAsync(state, TimeSpan.FromSeconds(1), staleAfter: TimeSpan.FromMinutes(10), loggerFactory: _loggers)).DisposeAsync();

        Assert.Equal(2, _logs.GetSnapshot().Count(r => r.Level == LogLevel.Warning && r.Message.StartsWith("State lock stale, broken", StringComparison.Ordinal)));
        Assert.False(File.Exists(state + ".lock"));
    }
}
