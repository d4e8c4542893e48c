using PollLease.Coordination;

namespace PollLease.Sessions;

/// <summary>
/// Rules for session ids. An id becomes part of Redis keys and lease values, so only letters, digits,
/// '.', '_' and '-' are allowed, 1 to <see cref="MaxLength"/> characters: no braces, colons, separators,
/// spaces or control characters can reach a key.
/// </summary>
public static class SessionIds
{
    /// <summary>The longest session id accepted.</summary>
    public const int MaxLength = KeySafety.MaxLength;

    /// <summary>True when <paramref name="id"/> follows the rules.</summary>
    /// <param name="id">The candidate id.</param>
    public static bool IsValid(string? id) => KeySafety.IsSafe(id, MaxLength);

    /// <summary>Throws <see cref="ArgumentException"/> naming the parameter and the rule when <paramref name="id"/> is invalid.</summary>
    /// <param name="id">The candidate id.</param>
    /// <param name="paramName">The parameter name to report.</param>
    public static void Validate(string? id, string paramName = "sessionId")
    {
        if (!IsValid(id))
        {
            var shown = id is null ? "null" : id.Length > 40 ? $"'{Printable(id[..40])}...' ({id.Length} characters)" : $"'{Printable(id)}'";
            throw new ArgumentException(
                $"Session id {shown} is invalid: it must be 1 to {MaxLength} characters of letters, digits, '.', '_' or '-'.",
                paramName);
        }
    }

    private static string Printable(string s) =>
        string.Concat(s.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
