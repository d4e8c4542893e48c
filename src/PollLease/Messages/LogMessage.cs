using System.Text.Json.Serialization;

namespace PollLease.Messages;

/// <summary>One element of a session's message log: the fencing token it was written under, when, and the body.</summary>
/// <param name="Token">The fencing token of the lease the writer held (0 for messages migrated from the legacy format).</param>
/// <param name="At">When the writer appended it (writer's clock; informational).</param>
/// <param name="Body">The message: a poll record, a response body or digest, or anything a handler writes.</param>
public sealed record LogMessage(
    [property: JsonPropertyName("token")] long Token,
    [property: JsonPropertyName("at")] DateTimeOffset? At,
    [property: JsonPropertyName("body")] string Body);
