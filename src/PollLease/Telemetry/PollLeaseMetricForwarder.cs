using System.Diagnostics.Metrics;

namespace PollLease.Telemetry;

/// <summary>
/// Hands every measurement of the <c>PollLease</c> meter to a callback, for telemetry pipelines that do not read
/// <see cref="System.Diagnostics.Metrics"/> themselves: the Azure Functions app forwards them to Application Insights
/// (<c>TelemetryClient.GetMetric</c>), whose 2.x SDK has no meter listener. Observable instruments (the owned-lease
/// gauge) report when <see cref="RecordObservableInstruments"/> is called. Tag values are bounded: per instrument and
/// tag, the first <see cref="MaxValuesPerTag"/> distinct values pass and later ones are reported as <c>(other)</c>, so a
/// metric backend that caps its dimensions never drops a measurement (totals stay exact).
/// </summary>
internal sealed class PollLeaseMetricForwarder : IDisposable
{
    private readonly MeterListener _listener;
    private readonly Action<PollLeaseMeasurement> _onMeasurement;
    private readonly TagValueLimiter _limiter;

    /// <summary>The default of <see cref="MaxValuesPerTag"/>: half of Application Insights' 100 values per dimension.</summary>
    public const int DefaultMaxValuesPerTag = 50;

    /// <summary>Starts listening to every PollLease instrument, existing and future.</summary>
    /// <param name="onMeasurement">Called for each measurement, on the thread that recorded it; keep it cheap.</param>
    /// <param name="maxValuesPerTag">Distinct values reported per instrument and tag before later ones become <c>(other)</c>.</param>
    public PollLeaseMetricForwarder(Action<PollLeaseMeasurement> onMeasurement, int maxValuesPerTag = DefaultMaxValuesPerTag)
        : this(onMeasurement, maxValuesPerTag, scope: null)
    {
    }

    /// <summary>Listens only to the meters of one <see cref="IMeterFactory"/> (its scope) when <paramref name="scope"/> is set.</summary>
    internal PollLeaseMetricForwarder(Action<PollLeaseMeasurement> onMeasurement, int maxValuesPerTag, object? scope)
    {
        ArgumentNullException.ThrowIfNull(onMeasurement);
        _onMeasurement = onMeasurement;
        _limiter = new TagValueLimiter(maxValuesPerTag);
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == PollLeaseTelemetry.MeterName && (scope is null || ReferenceEquals(instrument.Meter.Scope, scope)))
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

    /// <summary>Distinct values reported per instrument and tag; later ones are reported as <c>(other)</c>.</summary>
    public int MaxValuesPerTag => _limiter.Limit;

    /// <summary>How many tag values were reported as <c>(other)</c> because their tag had reached its limit.</summary>
    public long CoarsenedTagValues => _limiter.Coarsened;

    /// <summary>Reads the observable instruments now (call it periodically, e.g. every 10 s).</summary>
    public void RecordObservableInstruments() => _listener.RecordObservableInstruments();

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();

    private void Forward(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            var text = Convert.ToString(tag.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "";
            copy[tag.Key] = _limiter.Apply(instrument.Name, tag.Key, text);
        }
        _onMeasurement(new PollLeaseMeasurement(instrument.Name, instrument is Counter<long> or Counter<int> or Counter<double>, value, copy));
    }
}
