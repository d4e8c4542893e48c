using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.ApplicationInsights;
using Microsoft.ApplicationInsights.DataContracts;
using Microsoft.ApplicationInsights.Metrics;
using Microsoft.Extensions.Hosting;
using PollLease.Telemetry;

namespace PollFunctions;

/// <summary>
/// Sends PollLease's metrics and activities to Application Insights, whose 2.x SDK reads neither
/// System.Diagnostics.Metrics nor arbitrary activity sources by itself. Metrics go to customMetrics, pre-aggregated per
/// minute by <see cref="TelemetryClient.GetMetric(MetricIdentifier)"/> (so nothing is sampled), tags as dimensions;
/// each lease cycle (<c>polllease.cycle</c>) becomes a dependency of type PollLease with its tags as properties.
/// </summary>
/// <param name="telemetry">The Application Insights client registered by AddApplicationInsightsTelemetryWorkerService.</param>
internal sealed class ApplicationInsightsBridge(TelemetryClient telemetry) : BackgroundService
{
    private static readonly TimeSpan GaugeInterval = TimeSpan.FromSeconds(10);
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
        var names = measurement.Tags.Keys.ToArray();
        var metric = _metrics.GetOrAdd((measurement.Name, string.Join(",", names)), key =>
            telemetry.GetMetric(new MetricIdentifier(MetricIdentifier.DefaultMetricNamespace, key.Name, names)));
        var values = measurement.Tags.Values.ToArray();
        if (metric.TryGetDataSeries(out var series, true, values))
        {
            series.TrackValue(measurement.Value);
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
