namespace PollLease.Messages;

/// <summary>
/// An append carried a fencing token older than the session's current one: another instance has taken the
/// session over since the writer acquired its lease. The writer must stop; nothing was written.
/// </summary>
public sealed class StaleTokenException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="sessionId">The session.</param>
    /// <param name="token">The token the append carried.</param>
    /// <param name="currentToken">The session's current token in Redis.</param>
    public StaleTokenException(string sessionId, long token, long currentToken)
        : base($"Append to session '{sessionId}' rejected: token {token} is older than the current token {currentToken}; another instance owns the session now.")
    {
        SessionId = sessionId;
        Token = token;
        CurrentToken = currentToken;
    }

    /// <summary>Creates the exception with a message only.</summary>
    /// <param name="message">The message.</param>
    public StaleTokenException(string message)
        : base(message)
    {
        SessionId = "";
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public StaleTokenException(string message, Exception innerException)
        : base(message, innerException)
    {
        SessionId = "";
    }

    /// <summary>Parameterless constructor for serializers and the exception pattern.</summary>
    public StaleTokenException()
    {
        SessionId = "";
    }

    /// <summary>The session.</summary>
    public string SessionId { get; }

    /// <summary>The token the append carried.</summary>
    public long Token { get; }

    /// <summary>The session's current token.</summary>
    public long CurrentToken { get; }
}
