namespace PollLease.Coordination;

/// <summary>
/// The fleet's events channel, as <see cref="CycleScript"/> publishes it: <c>released|id|s1,s2</c> (rebalance or
/// shutdown), <c>joined|id</c>, <c>left|id</c>, <c>reset|id</c> (its heartbeat lapsed; its leases were deleted) and
/// <c>assignment|version</c> (the janitor published a new assignment).
/// </summary>
internal static class FleetEvents
{
    /// <summary>What the receiver should do after an event is applied.</summary>
    public enum Reaction
    {
        /// <summary>Nothing (its own event, or one it does not know).</summary>
        None,

        /// <summary>Run a cycle now.</summary>
        Wake,

        /// <summary>Reload the published assignment.</summary>
        Assignment,
    }

    /// <summary>Applies <paramref name="message"/> to <paramref name="table"/>; a malformed message is ignored.</summary>
    public static Reaction Apply(LeaseTable table, string self, string message, long now)
    {
        var parts = message.Split('|');
        if (parts.Length < 2 || parts[1] == self)
        {
            return Reaction.None;
        }
        var sender = parts[1];
        switch (parts[0])
        {
            case "released" when parts.Length == 3:
                table.Released(sender, parts[2].Split(','), now);
                return Reaction.Wake;
            case "joined":
                table.Joined(sender);
                return Reaction.Wake;
            case "left":
                table.Left(sender);
                return Reaction.Wake;
            case "reset":
                table.Reset(sender);
                return Reaction.Wake;
            case "assignment":
                return Reaction.Assignment;
            default:
                return Reaction.None;
        }
    }
}
