namespace PollLease.Sessions;

/// <summary>
/// One poll target: what to poll, how often, and whether it is paused. Stored in Redis as the hash
/// <c>{prefix}:session:{id}</c>, listed in <c>{prefix}:sessions</c>.
/// </summary>
/// <param name="Id">The session id (see <see cref="SessionIds"/>).</param>
/// <param name="Target">What to poll: a URI for the http handler, or any opaque string a custom handler understands.</param>
/// <param name="Interval">How often to poll, 4 to 120 seconds.</param>
/// <param name="Paused">Paused sessions are not polled and their leases are released.</param>
/// <param name="Metadata">Free-form string pairs for handlers; may be empty.</param>
public sealed record PollSession(string Id, string Target, TimeSpan Interval, bool Paused, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>The shortest poll interval allowed.</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(4);

    /// <summary>The longest poll interval allowed.</summary>
    public static readonly TimeSpan MaxInterval = TimeSpan.FromSeconds(120);
}
