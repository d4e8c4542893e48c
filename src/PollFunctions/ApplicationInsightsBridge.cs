using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.ApplicationInsights;
using Microsoft.ApplicationInsights.DataContracts;
using Microsoft.ApplicationInsights.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PollLease.Telemetry;

namespace PollFunctions;

/// <summary>
/// Sends PollLease's metrics and activities to Application Insights, whose 2.x SDK reads neither
/// System.Diagnostics.Metrics nor arbitrary activity sources by itself. Metrics go to customMetrics, pre-aggregated per
/// minute by <see cref="TelemetryClient.GetMetric(MetricIdentifier)"/> (so nothing is sampled); each lease cycle
/// (<c>polllease.cycle</c>) becomes a dependency of type PollLease with its tags as properties.
/// </summary>
/// <remarks>
/// Dimensions stay bounded. The <c>instance</c> tag is not a dimension: one worker runs one instance, and
/// <see cref="PollLeaseRoleInstance"/> puts its id in cloud_RoleInstance. Every other tag passes through the forwarder's
/// cap (<see cref="PollLeaseMetricForwarder.DefaultMaxValuesPerTag"/> values per tag, later ones as <c>(other)</c>), below
/// the SDK's 100 values per dimension, so the SDK never refuses a series; if it still does, that is logged, not ignored.
/// </remarks>
/// <param name="telemetry">The Application Insights client registered by AddApplicationInsightsTelemetryWorkerService.</param>
/// <param name="logger">Where a refused series is reported.</param>
internal sealed class ApplicationInsightsBridge(TelemetryClient telemetry, ILogger<ApplicationInsightsBridge> logger) : BackgroundService
{
    private static readonly TimeSpan GaugeInterval = TimeSpan.FromSeconds(10);

    // LoggerMessage.Define rather than the source generator: the generator comes with a package this app references
    // only transitively, whose analyzers do not flow to it.
    private static readonly Action<ILogger, string, double, Exception?> SeriesRefused = LoggerMessage.Define<string, double>(
        LogLevel.Warning, new EventId(9001, nameof(SeriesRefused)),
        "Application Insights refused a metric series: metric={Metric} value={Value} (its series limit is reached); the measurement is not in customMetrics");

    private readonly ConcurrentDictionary<(string Name, string Dimensions), Metric> _metrics = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var metrics = new PollLeaseMetricForwarder(Track);
        using var activities = new PollLeaseActivityForwarder(Track);
        using var timer = new PeriodicTimer(GaugeInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                // The owned-lease gauge is observable: read it on a fixed cadence.
                metrics.RecordObservableInstruments();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Host stopping: the SDK flushes what was aggregated.
        }
    }

    private void Track(PollLeaseMeasurement measurement)
    {
        var tags = measurement.Tags.Where(t => t.Key != "instance").ToArray();
        var names = tags.Select(t => t.Key).ToArray();
        var metric = _metrics.GetOrAdd((measurement.Name, string.Join(",", names)), key =>
            telemetry.GetMetric(new MetricIdentifier(MetricIdentifier.DefaultMetricNamespace, key.Name, names)));
        if (metric.TryGetDataSeries(out var series, true, tags.Select(t => t.Value).ToArray()))
        {
            series.TrackValue(measurement.Value);
        }
        else
        {
            SeriesRefused(logger, measurement.Name, measurement.Value, null);
        }
    }

    private void Track(Activity activity)
    {
        var dependency = new DependencyTelemetry
        {
            Type = "PollLease",
            Name = activity.OperationName,
            Target = activity.GetTagItem("polllease.instance") as string,
            Timestamp = activity.StartTimeUtc,
            Duration = activity.Duration,
            Success = activity.Status != ActivityStatusCode.Error,
            ResultCode = activity.Status == ActivityStatusCode.Error ? activity.StatusDescription : null,
            Id = activity.SpanId.ToHexString(),
        };
        dependency.Context.Operation.Id = activity.TraceId.ToHexString();
        foreach (var (key, value) in activity.TagObjects)
        {
            dependency.Properties[key] = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture);
        }
        telemetry.TrackDependency(dependency);
    }
}
