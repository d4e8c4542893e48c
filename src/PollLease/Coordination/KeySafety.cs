using System.Buffers;

namespace PollLease.Coordination;

/// <summary>
/// The one rule for strings that become part of a Redis key or of a lease value: letters, digits,
/// '.', '_' and '-'. It keeps out braces (hash-tag injection), colons (key splitting), '|' and ','
/// (lease value and event separators), spaces and control characters.
/// </summary>
internal static class KeySafety
{
    internal const int MaxLength = 128;

    private static readonly SearchValues<char> Allowed =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

    internal static bool IsSafe(string? value, int maxLength) =>
        !string.IsNullOrEmpty(value) && value.Length <= maxLength && !value.AsSpan().ContainsAnyExcept(Allowed);

    /// <summary>Replaces every character outside the rule with '-', for generated ids built from host names.</summary>
    internal static string Sanitize(string value, int maxLength)
    {
        var chars = value.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!Allowed.Contains(chars[i]))
            {
                chars[i] = '-';
            }
        }
        var s = new string(chars);
        return s.Length <= maxLength ? s : s[..maxLength];
    }
}
