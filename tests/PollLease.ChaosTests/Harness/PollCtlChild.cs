using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using PollLease.Tests.Infrastructure;

namespace PollLease.ChaosTests.Harness;

/// <summary>One line of a child's output and when the test received it.</summary>
public sealed record OutputLine(DateTimeOffset Received, string Text);

/// <summary>
/// A `pollctl run --plain` child process with its output captured line by line. It can be killed (-9), stopped
/// (SIGSTOP), continued (SIGCONT) or terminated gracefully (SIGTERM).
/// </summary>
public sealed partial class PollCtlChild : IDisposable
{
    private readonly List<OutputLine> _lines = [];

    public PollCtlChild(string name, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        Name = name;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(BuiltProject.Dll(Path.Combine("src", "PollCtl"), "pollctl"));
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        // Log timestamps in UTC so the checker can place them on the same axis as Redis server time.
        info.Environment["TZ"] = "UTC";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        Process = Process.Start(info)!;
        Process.OutputDataReceived += (_, e) => Add(e.Data);
        Process.ErrorDataReceived += (_, e) => Add(e.Data);
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
    }

    public string Name { get; }

    public Process Process { get; }

    public int Pid => Process.Id;

    public IReadOnlyList<OutputLine> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public int LineCount
    {
        get
        {
            lock (_lines)
            {
                return _lines.Count;
            }
        }
    }

    public string Output => string.Join('\n', Lines.Select(l => l.Text));

    /// <summary>The instance ids this process registered.</summary>
    public IReadOnlyList<string> Instances =>
        [.. Lines.Select(l => RegisteredPattern().Match(l.Text)).Where(m => m.Success).Select(m => m.Groups[1].Value).Distinct()];

    public void Kill9() => Process.Kill(entireProcessTree: true);

    public void Stop() => Signal("-STOP");

    public void Continue() => Signal("-CONT");

    public void Terminate() => Signal("-TERM");

    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await Process.WaitForExitAsync(cts.Token);
        Process.WaitForExit(); // drains the redirected streams
    }

    public void Dispose()
    {
        if (!Process.HasExited)
        {
            // A stopped process ignores everything but SIGKILL and SIGCONT; SIGKILL works either way.
            Process.Kill(entireProcessTree: true);
            Process.WaitForExit();
        }
        Process.Dispose();
    }

    /// <summary>
    /// The UTC time of a log line: its HH:mm:ss.fff stamp put on the date that brings it closest to when the
    /// line was received (a run may cross midnight).
    /// </summary>
    public static DateTimeOffset? StampOf(OutputLine line)
    {
        var m = StampPattern().Match(line.Text);
        if (!m.Success)
        {
            return null;
        }
        var tod = TimeSpan.ParseExact(m.Groups[1].Value, @"hh\:mm\:ss\.fff", CultureInfo.InvariantCulture);
        var day = new DateTimeOffset(line.Received.UtcDateTime.Date, TimeSpan.Zero);
        return new[] { day.AddDays(-1) + tod, day + tod, day.AddDays(1) + tod }
            .MinBy(c => Math.Abs((c - line.Received).Ticks));
    }

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", [signal, Pid.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill {signal} {Pid} failed with {kill.ExitCode}.");
        }
    }

    private void Add(string? text)
    {
        if (text is null)
        {
            return;
        }
        lock (_lines)
        {
            _lines.Add(new OutputLine(DateTimeOffset.UtcNow, text));
        }
    }

    [GeneratedRegex(@"^(\d\d:\d\d:\d\d\.\d\d\d) ")]
    private static partial Regex StampPattern();

    [GeneratedRegex(@"Instance registered: instance=(\S+)")]
    private static partial Regex RegisteredPattern();
}
