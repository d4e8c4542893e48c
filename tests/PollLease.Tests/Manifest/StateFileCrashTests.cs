using System.Diagnostics;
using PollCtl.Manifest;
using PollLease.Sessions;
using PollLease.Tests.Infrastructure;

namespace PollLease.Tests.Manifest;

/// <summary>
/// Runs alone: its child processes keep every core busy, which would starve the timing-bound lease tests
/// (800 ms operation timeouts) running beside it.
/// </summary>
[CollectionDefinition(nameof(StateFileCrashTests), DisableParallelization = true)]
public sealed class StateFileCrashRunsAlone;

/// <summary>A process killed at random points of a save, 1,000 times, never leaves a state that fails to load.</summary>
[Collection(nameof(StateFileCrashTests))]
public sealed class StateFileCrashTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("polltorture-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string TortureDll() => BuiltProject.Dll(Path.Combine("tests", "PollLease.StateTorture"), "PollLease.StateTorture");

    [Fact]
    public async Task A_thousand_kills_at_random_points_of_a_save_leave_zero_corrupted_loads()
    {
        var kills = int.TryParse(Environment.GetEnvironmentVariable("POLL_TORTURE_KILLS"), out var k) ? k : 1000;
        var dll = TortureDll();
        var corrupted = 0;
        var loaded = 0;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var delays = Enumerable.Range(0, kills).Select(_ => random.Next(0, 40)).ToArray();
        var next = -1;
        async Task WorkerAsync(int worker)
        {
            var path = Path.Combine(_dir, $"w{worker}", "state.json");
            int i;
            while ((i = Interlocked.Increment(ref next)) < kills)
            {
                using var child = Process.Start(new ProcessStartInfo("dotnet", [dll, path]) { RedirectStandardOutput = true, UseShellExecute = false })!;
                var ready = await child.StandardOutput.ReadLineAsync();
                Assert.Equal("ready", ready);
                await Task.Delay(delays[i]);
                child.Kill();
                await child.WaitForExitAsync();
                try
                {
                    var state = await new StateFile(path).LoadAsync<ApplyState>(s => s.Version == 1 && s.Created.Count > 0);
                    Assert.NotNull(state);
                    Interlocked.Increment(ref loaded);
                }
                catch (StateCorruptedException)
                {
                    Interlocked.Increment(ref corrupted);
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Max(2, Environment.ProcessorCount)).Select(w => Task.Run(() => WorkerAsync(w))));

        Assert.True(corrupted == 0, $"{corrupted} corrupted loads out of {kills} kills (seed {seed})");
        Assert.Equal(kills, loaded);
    }
}
