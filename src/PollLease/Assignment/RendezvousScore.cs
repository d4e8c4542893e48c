using System.Buffers;
using System.IO.Hashing;
using System.Text;

namespace PollLease.Assignment;

/// <summary>The 64-bit hash behind rendezvous scores. The benchmark's <c>hash</c> section measures both.</summary>
internal enum RendezvousHash
{
    /// <summary>
    /// XxHash64 (System.IO.Hashing) of the session and of the instance, each once, combined by a 64-bit finalizer:
    /// well mixed on ids that differ in a few trailing digits, and a score costs a couple of multiplications once
    /// the session's hash is known (scoring every session against every instance is what a full computation does).
    /// The default.
    /// </summary>
    XxHash64,

    /// <summary>FNV-1a 64, the first hash used: kept so the balance bench can compare the two.</summary>
    Fnv1a,
}

/// <summary>
/// Highest-random-weight scores, the same on every instance: <c>Mix(XxHash64(session), XxHash64(node))</c> by default,
/// <c>FNV-1a(session \0 node)</c> for comparison.
/// </summary>
internal static class RendezvousScore
{
    private const ulong FnvOffset = 14695981039346656037UL;
    private const ulong FnvPrime = 1099511628211UL;

    public static ulong Score(string session, string node, RendezvousHash hash = RendezvousHash.XxHash64)
    {
        if (hash == RendezvousHash.XxHash64)
        {
            return Mix(Hash(session), Hash(node));
        }
        var length = Encoding.UTF8.GetByteCount(session) + 1 + Encoding.UTF8.GetByteCount(node);
        byte[]? rented = null;
        var buffer = length <= 512 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length)).AsSpan(0, length);
        try
        {
            var written = Encoding.UTF8.GetBytes(session, buffer);
            buffer[written++] = 0;
            written += Encoding.UTF8.GetBytes(node, buffer[written..]);
            return Fnv1a(buffer[..written]);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>FNV-1a of <c>session \0 node</c> as bytes (the comparison hash only).</summary>
    public static ulong Fnv1aScore(ReadOnlySpan<byte> bytes) => Fnv1a(bytes);

    /// <summary>XxHash64 of an id's UTF-8 bytes: computed once per session and per instance.</summary>
    public static ulong Hash(string id)
    {
        var length = Encoding.UTF8.GetByteCount(id);
        byte[]? rented = null;
        var buffer = length <= 512 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length)).AsSpan(0, length);
        try
        {
            return System.IO.Hashing.XxHash64.HashToUInt64(buffer[..Encoding.UTF8.GetBytes(id, buffer)]);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// The score of a (session, instance) pair from their hashes: the SplitMix64 finalizer over a non-linear
    /// combination. A plain XOR would not do: for two instances the winner would then hang on one bit of the
    /// session's hash, so rankings of different sessions would be correlated.
    /// </summary>
    public static ulong Mix(ulong session, ulong node)
    {
        var z = session + (node * 0x9E3779B97F4A7C15UL) + 0x632BE59BD9B4E019UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Fnv1a(ReadOnlySpan<byte> bytes)
    {
        var h = FnvOffset;
        foreach (var b in bytes)
        {
            h ^= b;
            h *= FnvPrime;
        }
        return h;
    }
}
