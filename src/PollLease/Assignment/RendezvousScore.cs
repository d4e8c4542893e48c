using System.Buffers;
using System.IO.Hashing;
using System.Text;

namespace PollLease.Assignment;

/// <summary>The 64-bit hash behind rendezvous scores. The benchmark's <c>hash</c> section measures both.</summary>
internal enum RendezvousHash
{
    /// <summary>XxHash64 from System.IO.Hashing: well mixed on ids that differ in a few trailing digits. The default.</summary>
    XxHash64,

    /// <summary>FNV-1a 64, the first hash used: kept so the balance bench can compare the two.</summary>
    Fnv1a,
}

/// <summary>Highest-random-weight scores: <c>hash(session \0 node)</c>, the same bytes on every instance.</summary>
internal static class RendezvousScore
{
    private const ulong FnvOffset = 14695981039346656037UL;
    private const ulong FnvPrime = 1099511628211UL;

    public static ulong Score(string session, string node, RendezvousHash hash = RendezvousHash.XxHash64)
    {
        var length = Encoding.UTF8.GetByteCount(session) + 1 + Encoding.UTF8.GetByteCount(node);
        byte[]? rented = null;
        var buffer = length <= 512 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length)).AsSpan(0, length);
        try
        {
            var written = Encoding.UTF8.GetBytes(session, buffer);
            buffer[written++] = 0;
            written += Encoding.UTF8.GetBytes(node, buffer[written..]);
            return Score(buffer[..written], hash);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    public static ulong Score(ReadOnlySpan<byte> bytes, RendezvousHash hash) => hash switch
    {
        RendezvousHash.Fnv1a => Fnv1a(bytes),
        _ => System.IO.Hashing.XxHash64.HashToUInt64(bytes),
    };

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
