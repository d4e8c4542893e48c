namespace PollLease.Coordination;

/// <summary>
/// The fleet's events channel, as <see cref="CycleScript"/> publishes it: <c>released|id|s1,s2</c> (rebalance or
/// shutdown), <c>joined|id</c>, <c>left|id</c>, <c>reset|id</c> (its heartbeat lapsed; its leases were deleted) and
/// <c>assignment|version</c> (the janitor published a new assignment) and <c>epoch|id|epoch</c> (Redis lost data:
/// see <see cref="DataLossGuard"/>).
/// </summary>
internal static class FleetEvents
{
    /// <summary>What another instance announced.</summary>
    public enum Kind
    {
        /// <summary>It released the listed sessions.</summary>
        Released,

        /// <summary>It registered.</summary>
        Joined,

        /// <summary>It deregistered (its leases were deleted).</summary>
        Left,

        /// <summary>Its heartbeat had lapsed: its leases were deleted.</summary>
        Reset,
    }

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
        if (parts[0] == "assignment")
        {
            return Reaction.Assignment;
        }
        if (parts[0] == "epoch")
        {
            // Redis lost data: the next heartbeat drops leases granted before, better now than a cycle later.
            return Reaction.Wake;
        }
        Kind? kind = parts[0] switch
        {
            "released" when parts.Length == 3 => Kind.Released,
            "joined" => Kind.Joined,
            "left" => Kind.Left,
            "reset" => Kind.Reset,
            _ => null,
        };
        if (kind is null)
        {
            return Reaction.None;
        }
        table.OnFleetEvent(kind.Value, sender, kind == Kind.Released ? parts[2].Split(',') : [], now);
        return Reaction.Wake;
    }
}
