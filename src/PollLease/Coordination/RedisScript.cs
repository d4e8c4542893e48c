using System.Security.Cryptography;
using System.Text;
using StackExchange.Redis;

namespace PollLease.Coordination;

/// <summary>
/// A Lua script run by EVALSHA (its SHA1 is computed here, once); when the server answers NOSCRIPT (a
/// restart, a failover, SCRIPT FLUSH) it is sent once with EVAL, which caches it again. Script text is
/// always a constant: nothing from user input is ever spliced into Lua.
/// </summary>
internal sealed class RedisScript
{
    private readonly byte[] _sha1;

    public RedisScript(string text)
    {
        Text = text;
#pragma warning disable CA5350 // SHA1 is what Redis names scripts by; it is not used for security here.
        _sha1 = SHA1.HashData(Encoding.UTF8.GetBytes(text));
#pragma warning restore CA5350
    }

    public string Text { get; }

    public Task<RedisResult> EvaluateAsync(IDatabaseAsync db, RedisKey[] keys, RedisValue[] args) => EvaluateAsync(db, keys, args, send => send());

    /// <summary>
    /// As <see cref="EvaluateAsync(IDatabaseAsync, RedisKey[], RedisValue[])"/>, with each command (EVALSHA, then EVAL
    /// when needed) issued through <paramref name="enqueue"/>, which may refuse it or order it against other calls.
    /// </summary>
    public async Task<RedisResult> EvaluateAsync(IDatabaseAsync db, RedisKey[] keys, RedisValue[] args, Func<Func<Task<RedisResult>>, Task<RedisResult>> enqueue)
    {
        try
        {
            return await enqueue(() => db.ScriptEvaluateAsync(_sha1, keys, args)).ConfigureAwait(false);
        }
        catch (RedisServerException e) when (e.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            return await enqueue(() => db.ScriptEvaluateAsync(Text, keys, args)).ConfigureAwait(false);
        }
    }
}
