using System.Globalization;
using System.Reflection;
using System.Text.Json;
using PollLease.ChaosTests.Harness;
using PollLease.Messages;
using PollLease.Polling;
using PollLease.Sessions;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace PollLease.ChaosTests.Security;

/// <summary>Two fleets on one Redis never touch each other's keys; Lua is never built from input.</summary>
public sealed class IsolationTests(ITestOutputHelper output) : IClassFixture<ChaosServerFixture>
{
    [Fact]
    public async Task Two_fleets_with_different_prefixes_on_one_redis_never_see_each_others_sessions_or_leases()
    {
        await using var redis = await RedisChild.StartAsync();
        await using var admin = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        // The same session ids in both fleets, plus some of each fleet's own.
        var fleets = new Dictionary<string, string[]>
        {
            ["fleeta"] = [.. Enumerable.Range(0, 4).Select(i => $"shared-{i}"), .. Enumerable.Range(0, 4).Select(i => $"a-{i}")],
            ["fleetb"] = [.. Enumerable.Range(0, 4).Select(i => $"shared-{i}"), .. Enumerable.Range(0, 4).Select(i => $"b-{i}")],
        };
        foreach (var (prefix, ids) in fleets)
        {
            var catalog = new SessionCatalog(admin, prefix);
            foreach (var id in ids)
            {
                await catalog.UpsertAsync(new PollSession(id, "record", PollSession.MinInterval, false, new Dictionary<string, string>()));
            }
        }
        using var a = Run("fleeta", 2, redis);
        using var b = Run("fleetb", 1, redis);

        var deadline = DateTimeOffset.UtcNow.AddSeconds(90);
        foreach (var (prefix, ids) in fleets)
        {
            var log = new MessageLog(admin, prefix);
            foreach (var id in ids)
            {
                while ((await log.ReadAsync(id)).Count == 0)
                {
                    Assert.True(DateTimeOffset.UtcNow < deadline, $"{prefix}/{id} never polled:\n{a.Output}\n{b.Output}");
                    await Task.Delay(200);
                }
            }
        }

        foreach (var (prefix, child) in new[] { ("fleeta", a), ("fleetb", b) })
        {
            var mine = child.Instances.ToHashSet(StringComparer.Ordinal);
            var db = admin.GetDatabase();
            var nodes = (await db.SortedSetRangeByRankAsync($"{{{prefix}}}:nodes")).Select(v => (string)v!).ToHashSet(StringComparer.Ordinal);
            Assert.Equal(mine, nodes);
            var log = new MessageLog(admin, prefix);
            foreach (var id in fleets[prefix])
            {
                var records = (await log.ReadAsync(id)).Select(m => PollRecord.TryParse(m.Body)!).ToArray();
                Assert.All(records, r => Assert.Contains(r.Instance, mine));
                var lease = (string?)await db.StringGetAsync($"{{{prefix}}}:lease:{id}");
                Assert.True(lease is null || mine.Contains(lease[..lease.LastIndexOf('|')]), $"{prefix}/{id} leased by {lease}");
            }
        }
        // Every key belongs to one of the two fleets, and `pollctl status` of each shows only its own.
        var all = admin.GetServer("127.0.0.1", redis.Port).Keys(pattern: "*").Select(k => (string)k!).ToArray();
        Assert.All(all, k => Assert.True(k.StartsWith("{fleeta}:", StringComparison.Ordinal) || k.StartsWith("{fleetb}:", StringComparison.Ordinal), k));
        using var status = new PollCtlChild("status", ["status", "--json", "--redis", redis.ConnectionString, "--prefix", "fleetb"]);
        await status.WaitForExitAsync(TimeSpan.FromSeconds(60));
        using var json = JsonDocument.Parse(string.Join('\n', status.Lines.Select(l => l.Text)));
        var shown = json.RootElement.GetProperty("leases").EnumerateArray().Select(l => l.GetProperty("session").GetString()).ToArray();
        output.WriteLine("fleetb status sessions: " + string.Join(",", shown));
        Assert.DoesNotContain(shown, s => s!.StartsWith("a-", StringComparison.Ordinal));
        Assert.DoesNotContain(json.RootElement.GetProperty("nodes").EnumerateArray(), n => a.Instances.Contains(n.GetProperty("id").GetString()!));
    }

    [Fact]
    public void Every_lua_script_is_a_constant_created_once()
    {
        var assembly = typeof(SessionCatalog).Assembly;
        var scriptType = assembly.GetType("PollLease.Coordination.RedisScript", throwOnError: true)!;
        var constants = assembly.GetTypes()
            .SelectMany(t => t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (string)f.GetRawConstantValue()!)
            .ToHashSet(StringComparer.Ordinal);
        var scriptFields = assembly.GetTypes()
            .SelectMany(t => t.GetFields(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            .Where(f => f.FieldType == scriptType && !f.DeclaringType!.FullName!.Contains('<', StringComparison.Ordinal)) // not async state machines
            .ToArray();
        Assert.True(scriptFields.Length >= 5, $"found {scriptFields.Length} scripts");
        foreach (var f in scriptFields)
        {
            // Static readonly: made once at type load, so no call's input can reach the text.
            Assert.True(f.IsStatic && f.IsInitOnly, $"{f.DeclaringType}.{f.Name} is not static readonly");
            var text = (string)scriptType.GetProperty("Text")!.GetValue(f.GetValue(null))!;
            Assert.True(constants.Contains(text), $"{f.DeclaringType}.{f.Name} is not a const string");
        }
        // Nothing else in the library evaluates Lua.
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "PollFunctions.sln")))
        {
            root = root.Parent;
        }
        Assert.NotNull(root);
        var evaluators = Directory.EnumerateFiles(Path.Combine(root.FullName, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(p => File.ReadAllText(p).Contains("ScriptEvaluate", StringComparison.Ordinal))
            .Select(p => Path.GetFileName(p))
            .ToArray();
        Assert.Equal(new[] { "RedisScript.cs" }, evaluators);
    }

    private static PollCtlChild Run(string prefix, int instances, RedisChild redis) =>
        new(prefix, ["run", "--plain", "--no-sample", "--instances", instances.ToString(CultureInfo.InvariantCulture), "--lease-ttl", "00:00:03", "--redis", redis.ConnectionString, "--prefix", prefix]);
}
