using System.Diagnostics;
using System.Text;
using System.Text.Json;
using PollLease.Tests.Infrastructure;

namespace PollLease.Tests.EndToEnd;

/// <summary>The real pollctl executable in child processes against real Redis: run, status, sessions, messages, SIGTERM.</summary>
public sealed class PollCtlProcessTests(RedisServerFixture fixture) : IClassFixture<RedisServerFixture>
{
    private readonly string _prefix = RedisFixture.NewPrefix();

    private static string PollCtlDll() => BuiltProject.Dll(Path.Combine("src", "PollCtl"), "pollctl");

    private sealed class Child : IDisposable
    {
        private readonly StringBuilder _output = new();

        public Child(params string[] args)
        {
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add(PollCtlDll());
            foreach (var a in args)
            {
                info.ArgumentList.Add(a);
            }
            Process = Process.Start(info)!;
            Process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (_output) { _output.AppendLine(e.Data); } } };
            Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (_output) { _output.AppendLine(e.Data); } } };
            Process.BeginOutputReadLine();
            Process.BeginErrorReadLine();
        }

        public Process Process { get; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
            }
            Process.Dispose();
        }
    }

    private async Task<(int Code, string Output)> PollCtlAsync(params string[] args)
    {
        using var child = new Child([.. args, "--redis", fixture.ConnectionString, "--prefix", _prefix]);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await child.Process.WaitForExitAsync(timeout.Token);
        child.Process.WaitForExit(); // drains the redirected streams
        return (child.Process.ExitCode, child.Output);
    }

    [Fact]
    public async Task Run_serves_the_catalog_status_reports_it_and_sigterm_releases_every_lease()
    {
        Assert.Equal(0, (await PollCtlAsync("sessions", "add", "e2e-1", "record", "--interval", "4")).Code);
        Assert.Equal(0, (await PollCtlAsync("sessions", "add", "e2e-2", "record", "--interval", "4")).Code);

        using var run = new Child("run", "--instances", "2", "--plain", "--lease-ttl", "00:00:03", "--no-sample", "--redis", fixture.ConnectionString, "--prefix", _prefix);
        await Eventually.TrueAsync(() => run.Output.Contains("Poll started", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "pollctl run polls");

        var (code, json) = await PollCtlAsync("status", "--json");
        Assert.Equal(0, code);
        using (var doc = JsonDocument.Parse(json))
        {
            Assert.Equal(2, doc.RootElement.GetProperty("nodes").EnumerateArray().Count(n => n.GetProperty("live").GetBoolean()));
            Assert.Equal(2, doc.RootElement.GetProperty("leases").GetArrayLength());
        }
        await Eventually.TrueAsync(async () => (await PollCtlAsync("messages", "e2e-1")).Output.Contains("token=", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "a poll record in the log");

        Process.Start("kill", ["-TERM", run.Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
        using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await run.Process.WaitForExitAsync(exit.Token);
        run.Process.WaitForExit();

        Assert.Equal(0, run.Process.ExitCode);
        Assert.Contains("pollctl: stopped; leases released", run.Output, StringComparison.Ordinal);
        var db = fixture.Redis.GetDatabase();
        Assert.False(await db.KeyExistsAsync($"{{{_prefix}}}:lease:e2e-1"));
        Assert.False(await db.KeyExistsAsync($"{{{_prefix}}}:lease:e2e-2"));
        Assert.Equal(0, await db.SortedSetLengthAsync($"{{{_prefix}}}:nodes"));
    }

    private static bool SigIntIgnored()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & 0x2) != 0;
    }

    [Fact]
    public async Task Run_on_embedded_garnet_reaches_a_balanced_state_and_stops_cleanly_on_ctrl_c()
    {
        var port = TestRedisServer.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var run = new Child("run", "--instances", "3", "--plain", "--port", port, "--prefix", _prefix, "--lease-ttl", "00:00:03");
        await Eventually.TrueAsync(() => run.Output.Contains("Instance registered", StringComparison.Ordinal) && run.Output.Contains("loaded", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "pollctl run starts embedded Garnet");

        async Task<(int Live, int Ideal, int[] Counts)> StatusAsync()
        {
            using var status = new Child("status", "--json", "--port", port, "--prefix", _prefix);
            await status.Process.WaitForExitAsync();
            status.Process.WaitForExit();
            using var doc = JsonDocument.Parse(status.Output);
            var counts = doc.RootElement.GetProperty("counts").EnumerateObject().Select(p => p.Value.GetInt32()).ToArray();
            return (doc.RootElement.GetProperty("nodes").EnumerateArray().Count(n => n.GetProperty("live").GetBoolean()), doc.RootElement.GetProperty("ideal").GetInt32(), counts);
        }

        // The sample catalog: 12 sessions over 3 instances, 4 each once settled.
        await Eventually.TrueAsync(async () =>
        {
            var (live, ideal, counts) = await StatusAsync();
            return live == 3 && counts.Length == 3 && counts.All(c => c == ideal) && counts.Sum() == 12;
        }, TimeSpan.FromSeconds(60), "a balanced fleet");

        // Ctrl+C. A child inherits an ignored SIGINT (e.g. a test host started as a background job), and .NET
        // then leaves it ignored; SIGTERM takes the same graceful path in pollctl.
        var signal = SigIntIgnored() ? "-TERM" : "-INT";
        Process.Start("kill", [signal, run.Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
        using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await run.Process.WaitForExitAsync(exit.Token);
        run.Process.WaitForExit();
        Assert.Equal(0, run.Process.ExitCode);
        Assert.Contains("pollctl: stopped; leases released", run.Output, StringComparison.Ordinal);
        Assert.Equal(3, run.Output.Split('\n').Count(l => l.Contains("Instance stopped", StringComparison.Ordinal) && l.Contains("deregistered=True", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Bad_usage_exits_2_runtime_failures_exit_1_with_one_line()
    {
        var bad = await PollCtlAsync("sessions", "add", "bad{id}", "x");
        Assert.Equal(2, bad.Code);
        Assert.Contains("Session id 'bad{id}' is invalid", bad.Output, StringComparison.Ordinal);

        var missing = await PollCtlAsync("sessions", "pause", "nope");
        Assert.Equal(1, missing.Code);
        Assert.Contains("Session 'nope' does not exist", missing.Output, StringComparison.Ordinal);

        using var child = new Child("status", "--redis", "127.0.0.1:1", "--prefix", _prefix);
        await child.Process.WaitForExitAsync();
        child.Process.WaitForExit();
        Assert.Equal(1, child.Process.ExitCode);
        Assert.Contains("cannot reach Redis at 127.0.0.1:1", child.Output, StringComparison.Ordinal);

        using var usage = new Child("frobnicate");
        await usage.Process.WaitForExitAsync();
        usage.Process.WaitForExit();
        Assert.Equal(2, usage.Process.ExitCode);
    }
}
