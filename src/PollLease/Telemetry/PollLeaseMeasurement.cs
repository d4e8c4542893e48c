namespace PollLease.Telemetry;

/// <summary>One measurement of a PollLease instrument.</summary>
/// <param name="Name">Instrument name, e.g. <c>polllease.lease.failovers</c>.</param>
/// <param name="IsCounter">True for counters (the value is an increment), false for gauges and histograms.</param>
/// <param name="Value">The measured value.</param>
/// <param name="Tags">The tags (always <c>instance</c>; <c>reason</c> or <c>from</c> on some), sorted by name.</param>
internal sealed record PollLeaseMeasurement(string Name, bool IsCounter, double Value, IReadOnlyDictionary<string, string> Tags);
