using FtpCluster.Compute.Evaluation;
using ScottPlot;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>eval --plot FILE</c>: a PNG of achieved sparsity against the perplexity ratio, one line per method
/// and routing, and against the wire bytes ratio (dashed) where a run through stages measured it. Both
/// are ratios to dense, so they share one axis; the dense point sits at (0, 1).
/// </summary>
internal static class EvalPlot
{
    private const int Width = 900, Height = 600;

    public static void Write(EvalReport report, string path)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var methods = report.Results.Where(r => r.Method != "dense").GroupBy(r => (r.Method, r.RoutingLabel)).ToList();
        for (int i = 0; i < methods.Count; i++)
        {
            var points = methods[i].OrderBy(r => r.SparsityAchieved).ToList();
            var color = palette.GetColor(i);
            string name = $"{methods[i].Key.Method} ({methods[i].Key.RoutingLabel})";

            var perplexity = plot.Add.Scatter(points.Select(r => r.SparsityAchieved).ToArray(), points.Select(r => r.PerplexityRatio).ToArray(), color);
            perplexity.LegendText = $"{name}: perplexity ratio";

            var wired = points.Where(r => r.WireBytesRatio is not null).ToList();
            if (wired.Count == 0) continue;
            var wire = plot.Add.Scatter(wired.Select(r => r.SparsityAchieved).ToArray(), wired.Select(r => r.WireBytesRatio!.Value).ToArray(), color);
            wire.LinePattern = LinePattern.Dashed;
            wire.MarkerShape = MarkerShape.OpenSquare;
            wire.LegendText = $"{name}: wire bytes ratio";
        }
        var dense = plot.Add.HorizontalLine(1);
        dense.LinePattern = LinePattern.Dotted;
        dense.Color = Colors.Gray;
        dense.LegendText = "dense";

        // From zero sparsity, where dense is, to just past the sparsest result.
        double sparsest = report.Results.Max(r => r.SparsityAchieved);
        plot.Axes.AutoScale();
        plot.Axes.SetLimitsX(0, sparsest + Math.Max(0.05, sparsest * 0.05));
        plot.Title($"{Path.GetFileName(report.Model)} on {Path.GetFileName(report.Data)}: {report.Sequences} sequences, {report.ContinuationTokens} continuation tokens");
        plot.XLabel("achieved sparsity (fraction of token-blocks skipped)");
        plot.YLabel("ratio to dense");
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, Width, Height);
    }
}
