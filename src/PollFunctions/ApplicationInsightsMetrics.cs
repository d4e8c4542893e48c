using System.Collections.Concurrent;
using Microsoft.ApplicationInsights;
using Microsoft.ApplicationInsights.Metrics;
using Microsoft.Extensions.Hosting;
using PollLease.Telemetry;

namespace PollFunctions;

/// <summary>
/// Sends the PollLease meter's measurements to Application Insights as custom metrics (customMetrics table): the
/// Application Insights 2.x SDK does not read System.Diagnostics.Metrics by itself. Values are pre-aggregated per
/// minute by <see cref="TelemetryClient.GetMetric(MetricIdentifier)"/>, so nothing is sampled; tags become dimensions.
/// </summary>
/// <param name="telemetry">The Application Insights client registered by AddApplicationInsightsTelemetryWorkerService.</param>
internal sealed class ApplicationInsightsMetrics(TelemetryClient telemetry) : BackgroundService
{
    private static readonly TimeSpan GaugeInterval = TimeSpan.FromSeconds(10);
    private readonly ConcurrentDictionary<(string Name, string Dimensions), Metric> _metrics = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var forwarder = new PollLeaseMetricForwarder(Track);
        using var timer = new PeriodicTimer(GaugeInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                // The owned-lease gauge is observable: read it on a fixed cadence.
                forwarder.RecordObservableInstruments();
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
}
