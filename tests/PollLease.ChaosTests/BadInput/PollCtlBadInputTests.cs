using PollLease.ChaosTests.Harness;

namespace PollLease.ChaosTests.BadInput;

/// <summary>
/// Bad input at the edge a person types into: every case is one clear line naming the field and the rule
/// (exit 2), or a skipped item with a warning; nothing crashes with a stack trace and nothing else is lost.
/// The library-level cases (every option rule, ids, intervals, hashes, elements, state files, manifests) are in
/// PollLease.Tests; these run the real executable.
/// </summary>
public sealed class PollCtlBadInputTests : IAsyncLifetime, IClassFixture<ChaosServerFixture>
{
    private RedisChild _redis = null!;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "pollbad-" + Guid.NewGuid().ToString("N")[..12]);

    public async Task InitializeAsync()
    {
        _redis = await RedisChild.StartAsync();
        Directory.CreateDirectory(_dir);
    }

    public async Task DisposeAsync()
    {
        await _redis.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(int Code, string Output)> PollCtlAsync(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        using var child = new PollCtlChild("pollctl", [.. args, "--redis", _redis.ConnectionString, "--prefix", "bad"], env);
        await child.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (child.Process.ExitCode, child.Output);
    }

    private static void AssertOneClearLine((int Code, string Output) result, int code, string expected)
    {
        Assert.True(result.Code == code, $"exit {result.Code}: {result.Output}");
        Assert.Contains(expected, result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal); // no stack trace
    }

    [Theory]
    [InlineData("a{b}")]
    [InlineData("a:b")]
    [InlineData("a b")]
    [InlineData("tab\there")]
    [InlineData("bell\u0007")]
    [InlineData("")]
    public async Task Session_ids_that_could_split_a_key_are_refused(string id)
    {
        AssertOneClearLine(await PollCtlAsync(null, "sessions", "add", id, "record", "--interval", "10"), 2, "is invalid");
        Assert.Empty(await ListAsync());
    }

    [Fact]
    public async Task A_10_kb_id_and_out_of_range_intervals_are_refused_with_short_messages()
    {
        var huge = await PollCtlAsync(null, "sessions", "add", new string('x', 10_240), "record");
        AssertOneClearLine(huge, 2, "(10240 characters)");
        Assert.True(huge.Output.Length < 400, huge.Output);
        AssertOneClearLine(await PollCtlAsync(null, "sessions", "add", "ok-id", "record", "--interval", "3"), 2, "interval");
        AssertOneClearLine(await PollCtlAsync(null, "sessions", "add", "ok-id", "record", "--interval", "121"), 2, "interval");
        Assert.Empty(await ListAsync());
    }

    [Fact]
    public async Task Run_refuses_bad_flags_and_bad_options_from_the_environment_naming_the_field()
    {
        AssertOneClearLine(await PollCtlAsync(null, "run", "--plain", "--no-sample", "--instances", "0"), 2, "--instances = 0 is invalid");
        AssertOneClearLine(await PollCtlAsync(null, "run", "--plain", "--no-sample", "--lease-ttl", "00:00:00.500"), 2, "--lease-ttl = 00:00:00.5000000 is invalid");
        AssertOneClearLine(
            await PollCtlAsync(new Dictionary<string, string> { ["PollLease__Polling__MaxConcurrency"] = "0" }, "run", "--plain", "--no-sample"),
            2, "MaxConcurrency");
    }

    [Theory]
    [InlineData("truncated", "{\"sessions\":[{\"id\":\"a\",\"target\"")]
    [InlineData("binary", "\u0000\u00ff\u0013\u0037")]
    [InlineData("wrong-shape", "{\"sessions\":{\"id\":\"a\"}}")]
    [InlineData("duplicates", "{\"sessions\":[{\"id\":\"a\",\"target\":\"t\",\"intervalSeconds\":10},{\"id\":\"a\",\"target\":\"u\",\"intervalSeconds\":10}]}")]
    public async Task A_bad_manifest_is_one_clear_error_and_changes_nothing(string name, string content)
    {
        var manifest = Path.Combine(_dir, name + ".json");
        await File.WriteAllTextAsync(manifest, content);
        var result = await PollCtlAsync(null, "apply", "-f", manifest);
        Assert.True(result.Code == 2, $"exit {result.Code}: {result.Output}");
        Assert.Contains(manifest, result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
        Assert.Empty(await ListAsync());
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("binary")]
    [InlineData("wrong-shape")]
    public async Task A_damaged_state_file_with_no_backup_is_one_clear_error_and_changes_nothing(string damage)
    {
        var manifest = Path.Combine(_dir, "m.json");
        await File.WriteAllTextAsync(manifest, "{\"sessions\":[{\"id\":\"a\",\"target\":\"t\",\"intervalSeconds\":10}]}");
        await File.WriteAllBytesAsync(manifest + ".state", damage switch
        {
            "truncated" => "{\"version\":1,\"crea"u8.ToArray(),
            "binary" => [0x00, 0xff, 0x13, 0x37, 0x80],
            _ => "[1,2,3]"u8.ToArray(),
        });
        var result = await PollCtlAsync(null, "apply", "-f", manifest);
        Assert.True(result.Code is 1 or 2, $"exit {result.Code}: {result.Output}");
        Assert.Contains(".state", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
        Assert.Empty(await ListAsync());
    }

    private async Task<string> ListAsync()
    {
        var (code, output) = await PollCtlAsync(null, "sessions", "list", "--json");
        Assert.True(code == 0, output);
        return output.Trim() is "[]" or "" ? "" : output.Trim();
    }
}
