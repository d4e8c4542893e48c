using Microsoft.ApplicationInsights.Channel;
using Microsoft.ApplicationInsights.Extensibility;
using Microsoft.Extensions.Options;
using PollLease.Coordination;

namespace PollFunctions;

/// <summary>
/// Puts the PollLease instance id in cloud_RoleInstance of everything the worker sends, so metrics need no instance
/// dimension (an unbounded one: every restart brings a new id) and logs, metrics and lease records of one instance
/// line up under one name.
/// </summary>
/// <param name="options">The instance's options (its id is resolved at start-up).</param>
internal sealed class PollLeaseRoleInstance(IOptions<PollLeaseOptions> options) : ITelemetryInitializer
{
    public void Initialize(ITelemetry telemetry)
    {
        ArgumentNullException.ThrowIfNull(telemetry);
        telemetry.Context.Cloud.RoleInstance = options.Value.InstanceId;
    }
}
