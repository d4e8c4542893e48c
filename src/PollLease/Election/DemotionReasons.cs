namespace PollLease.Election;

/// <summary>Why a leader stopped leading; passed to <see cref="ElectionCallbacks.OnDemote"/> and used as the <c>reason</c> tag of metrics.</summary>
public static class DemotionReasons
{
    /// <summary>The renew compare-and-set or a validation found another value in the key.</summary>
    public const string Lost = "lost";

    /// <summary>No successful renew within <see cref="ElectionOptions.RenewDeadline"/>.</summary>
    public const string Deadline = "deadline";

    /// <summary>The connection stayed down longer than <see cref="ElectionOptions.DisconnectGracePeriod"/>.</summary>
    public const string Disconnected = "disconnected";

    /// <summary>The health check failed <see cref="ElectionOptions.HealthCheckFailureThreshold"/> times in a row.</summary>
    public const string Unhealthy = "unhealthy";

    /// <summary>The election was stopped.</summary>
    public const string Stopped = "stopped";
}
