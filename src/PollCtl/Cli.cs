using System.CommandLine;
using StackExchange.Redis;

namespace PollCtl;

/// <summary>Where an admin command points: a connection string (or the embedded port) and a key prefix.</summary>
internal sealed record AdminTarget(string? Redis, int Port, string Prefix);

internal static class Cli
{
    public static AdminTarget Target(ParseResult p, Option<string?> redis, Option<int> port, Option<string> prefix) =>
        new(EmbeddedRedis.Configured(p.GetValue(redis)), p.GetValue(port), p.GetValue(prefix)!);

    /// <summary>Turns expected failures into one line on stderr: exit 1 for runtime failures, 2 for bad input.</summary>
    public static async Task<int> GuardAsync(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync("pollctl: " + e.Message).ConfigureAwait(false);
            return 2;
        }
        catch (Microsoft.Extensions.Options.OptionsValidationException e)
        {
            await Console.Error.WriteLineAsync("pollctl: " + string.Join("; ", e.Failures)).ConfigureAwait(false);
            return 2;
        }
        catch (PollCtlException e)
        {
            await Console.Error.WriteLineAsync("pollctl: " + e.Message).ConfigureAwait(false);
            return 1;
        }
        catch (RedisException e)
        {
            await Console.Error.WriteLineAsync("pollctl: Redis error: " + e.Message).ConfigureAwait(false);
            return 1;
        }
        catch (TimeoutException e)
        {
            // RedisTimeoutException is a TimeoutException, not a RedisException.
            await Console.Error.WriteLineAsync("pollctl: Redis timed out: " + e.Message).ConfigureAwait(false);
            return 1;
        }
        catch (OperationCanceledException)
        {
            return 1;
        }
    }

    /// <summary>Connects for an admin command, failing fast with the endpoint named when Redis is unreachable.</summary>
    public static async Task<ConnectionMultiplexer> ConnectAsync(AdminTarget target)
    {
        var connection = target.Redis ?? $"127.0.0.1:{target.Port}";
        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(connection);
        }
        catch (ArgumentException)
        {
            throw new ArgumentException("--redis is not a valid StackExchange.Redis connection string");
        }
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = Math.Min(options.ConnectTimeout, 3000);
        options.ConnectRetry = 1;
        try
        {
            return await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        }
        catch (RedisConnectionException)
        {
            throw new PollCtlException($"cannot reach Redis at {EmbeddedRedis.Endpoints(connection)} (start `pollctl run`, or pass --redis / POLL_REDIS)");
        }
    }
}
