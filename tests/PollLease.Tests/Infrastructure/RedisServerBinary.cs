namespace PollLease.Tests.Infrastructure;

/// <summary>
/// Finds redis-server for the suites. <c>POLL_TEST_HIDE_REDIS_SERVER=1</c> makes it behave exactly as if the binary
/// were missing, so a machine with redis-server installed (CI) can still prove that the suites pass on a machine
/// with only the .NET SDK.
/// </summary>
public static class RedisServerBinary
{
    /// <summary>The switch that hides redis-server from every fixture and harness.</summary>
    public const string HideVariable = "POLL_TEST_HIDE_REDIS_SERVER";

    /// <summary>True when the switch is set.</summary>
    public static bool Hidden => Environment.GetEnvironmentVariable(HideVariable) is "1" or "true";

    /// <summary>True when redis-server can be started here.</summary>
    public static bool Available => Find() is not null;

    /// <summary>The redis-server executable on PATH, or null when there is none or it is hidden.</summary>
    public static string? Find()
    {
        if (Hidden)
        {
            return null;
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Why a redis-server-only test did not run.</summary>
    public static string MissingReason => Hidden
        ? $"redis-server hidden by {HideVariable}"
        : "redis-server is not on PATH";
}

/// <summary>
/// A test that needs redis-server itself because it uses a feature the embedded Garnet server lacks: it is skipped,
/// with the given reason, where redis-server is missing or hidden. The whole solution keeps at most ten of them.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RedisServerFactAttribute : FactAttribute
{
    /// <param name="needs">What of redis-server the test needs, in a few words.</param>
    public RedisServerFactAttribute(string needs)
    {
        Needs = needs;
        if (!RedisServerBinary.Available)
        {
            Skip = $"needs redis-server ({needs}): {RedisServerBinary.MissingReason}";
        }
    }

    /// <summary>What of redis-server the test needs.</summary>
    public string Needs { get; }
}
