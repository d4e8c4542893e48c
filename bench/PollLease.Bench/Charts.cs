using System.Globalization;
using ScottPlot;

namespace PollLease.Bench;

/// <summary>The PNG charts the README links: both axes logarithmic (powers of ten labelled), 900 x 540.</summary>
internal static class Charts
{
    private const int Width = 900;
    private const int Height = 540;

    /// <summary>Cycle p99 (solid) and p50 (dashed) against S, one colour per N.</summary>
    public static string CycleLatency(IReadOnlyList<ScaleBench.Point> points, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var index = 0;
        foreach (var group in points.GroupBy(p => p.N))
        {
            var xs = group.Select(p => Math.Log10(p.S)).ToArray();
            var color = palette.GetColor(index++);
            var p99 = plot.Add.Scatter(xs, group.Select(p => Math.Log10(Math.Max(p.CycleP99Ms, 0.01))).ToArray());
            p99.Color = color;
            p99.LineWidth = 2;
            p99.LegendText = $"N = {group.Key}, p99";
            var p50 = plot.Add.Scatter(xs, group.Select(p => Math.Log10(Math.Max(p.CycleP50Ms, 0.01))).ToArray());
            p50.Color = color;
            p50.LinePattern = LinePattern.Dashed;
            p50.LegendText = $"N = {group.Key}, p50";
        }
        plot.Title("Lease cycle latency per instance vs sessions (N instances on one Redis)");
        plot.XLabel("sessions S (whole fleet)");
        plot.YLabel("cycle latency (ms)");
        LogTicks(plot.Axes.Bottom, points.Select(p => (double)p.S));
        LogTicks(plot.Axes.Left, points.SelectMany(p => new[] { Math.Max(p.CycleP50Ms, 0.01), Math.Max(p.CycleP99Ms, 0.01) }));
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, Width, Height);
        return path;
    }

    /// <summary>Commands sent per second against K, one bar per library and K.</summary>
    public static string CommandsVsPeers(IReadOnlyList<(string Library, int K, double CommandsPerSecond)> rows, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var libraries = rows.Select(r => r.Library).Distinct().ToList();
        var sizes = rows.Select(r => r.K).Distinct().Order().ToList();
        var bars = new List<Bar>();
        foreach (var (k, group) in sizes.Select((k, g) => (k, g)))
        {
            for (var l = 0; l < libraries.Count; l++)
            {
                var value = rows.FirstOrDefault(r => r.K == k && r.Library == libraries[l]).CommandsPerSecond;
                if (value <= 0)
                {
                    continue;
                }
                var top = Math.Log10(value);
                bars.Add(new Bar
                {
                    Position = (group * (libraries.Count + 1)) + l,
                    Value = top,
                    ValueBase = -1,
                    FillColor = palette.GetColor(l),
                    Label = value.ToString(value < 10 ? "0.00" : "0", CultureInfo.InvariantCulture),
                });
            }
        }
        var series = plot.Add.Bars(bars);
        series.ValueLabelStyle.FontSize = 12;
        for (var l = 0; l < libraries.Count; l++)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = libraries[l], FillColor = palette.GetColor(l) });
        }
        plot.Axes.Bottom.SetTicks(
            sizes.Select((_, g) => (g * (libraries.Count + 1)) + ((libraries.Count - 1) / 2.0)).ToArray(),
            sizes.Select(k => $"K = {k:N0}").ToArray());
        plot.Title("Commands sent to Redis per second, one process holding K leases (TTL 9 s, renew 3 s)");
        plot.YLabel("commands sent per second");
        LogTicks(plot.Axes.Left, rows.Where(r => r.CommandsPerSecond > 0).Select(r => r.CommandsPerSecond).Append(0.1));
        plot.Axes.SetLimitsY(-1, Math.Log10(Math.Max(10, rows.Max(r => r.CommandsPerSecond))) + 0.5);
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, Width, Height);
        return path;
    }

    /// <summary>Ticks at the powers of ten covering the values, for data plotted as log10.</summary>
    private static void LogTicks(IAxis axis, IEnumerable<double> values)
    {
        var logs = values.Where(v => v > 0).Select(Math.Log10).ToList();
        var low = (int)Math.Floor(logs.Min());
        var high = (int)Math.Ceiling(logs.Max());
        var positions = Enumerable.Range(low, high - low + 1).Select(e => (double)e).ToArray();
        var labels = positions.Select(e => Math.Pow(10, e).ToString(e < 0 ? "0.###" : "N0", CultureInfo.InvariantCulture)).ToArray();
        axis.SetTicks(positions, labels);
    }
}
