namespace PollLease.Election;

/// <summary>One term of leadership, handed to <see cref="ElectionCallbacks.OnPromote"/>.</summary>
/// <param name="Role">The role.</param>
/// <param name="Token">The fencing token of this term: strictly greater than every earlier term's.</param>
/// <param name="Leadership">Cancelled the moment this term ends (demotion, step-down or stop).</param>
public sealed record ElectionTerm(string Role, long Token, CancellationToken Leadership);
