using System.Globalization;

namespace PollLease.Coordination;

/// <summary>The lease value stored in Redis: <c>owner|token</c>.</summary>
internal static class LeaseValue
{
    public static string Format(string owner, long token) => OwnerPrefix(owner) + token.ToString(CultureInfo.InvariantCulture);

    /// <summary>What every value of <paramref name="owner"/> starts with: <c>owner|</c>.</summary>
    public static string OwnerPrefix(string owner) => owner + "|";

    /// <summary>Parses <c>owner|token</c>; false for anything else (a foreign or corrupted value).</summary>
    public static bool TryParse(string? value, out string owner, out long token)
    {
        owner = "";
        token = 0;
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }
        var bar = value.LastIndexOf('|');
        if (bar <= 0 || !long.TryParse(value.AsSpan(bar + 1), NumberStyles.None, CultureInfo.InvariantCulture, out token) || token <= 0)
        {
            token = 0;
            return false;
        }
        owner = value[..bar];
        return true;
    }
}
