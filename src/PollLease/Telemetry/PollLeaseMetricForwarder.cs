using System.Diagnostics.Metrics;

namespace PollLease.Telemetry;

/// <summary>
/// Hands every measurement of the <c>PollLease</c> meter to a callback, for telemetry pipelines that do not read
/// <see cref="System.Diagnostics.Metrics"/> themselves: the Azure Functions app forwards them to Application Insights
/// (<c>TelemetryClient.GetMetric</c>), whose 2.x SDK has no meter listener. Observable instruments (the owned-lease
/// gauge) report when <see cref="RecordObservableInstruments"/> is called.
/// </summary>
internal sealed class PollLeaseMetricForwarder : IDisposable
{
    private readonly MeterListener _listener;
    private readonly Action<PollLeaseMeasurement> _onMeasurement;

    /// <summary>Starts listening to every PollLease instrument, existing and future.</summary>
    /// <param name="onMeasurement">Called for each measurement, on the thread that recorded it; keep it cheap.</param>
    public PollLeaseMetricForwarder(Action<PollLeaseMeasurement> onMeasurement)
    {
        ArgumentNullException.ThrowIfNull(onMeasurement);
        _onMeasurement = onMeasurement;
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == PollLeaseTelemetry.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Forward(i, v, tags));
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Forward(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Forward(i, v, tags));
        _listener.Start();
    }

    /// <summary>Reads the observable instruments now (call it periodically, e.g. every 10 s).</summary>
    public void RecordObservableInstruments() => _listener.RecordObservableInstruments();

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();

    private void Forward(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            copy[tag.Key] = Convert.ToString(tag.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
        }
        _onMeasurement(new PollLeaseMeasurement(instrument.Name, instrument is Counter<long> or Counter<int> or Counter<double>, value, copy));
    }
}
