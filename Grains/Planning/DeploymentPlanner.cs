namespace FtpCluster.Grains.Planning;

/// <summary>A silo that can host a stage, and how much work it can take relative to the others.</summary>
/// <param name="Capacity">Relative speed (e.g. measured GFLOP/s or a device weight); must be positive.</param>
/// <param name="MemoryBudgetBytes">Weight bytes the silo may hold; null for no limit.</param>
public sealed record SiloCapacity(string Silo, double Capacity, long? MemoryBudgetBytes = null);

/// <summary>Stage <paramref name="Index"/> runs blocks [FirstLayer, EndLayer) on <paramref name="Silo"/>.</summary>
public sealed record StageAssignment(int Index, string Silo, int FirstLayer, int EndLayer)
{
    public int LayerCount => EndLayer - FirstLayer;
}

/// <summary>A model's layers cut into contiguous stages, one per silo, in pipeline order.</summary>
public sealed record DeploymentPlan(IReadOnlyList<StageAssignment> Stages, double BottleneckSeconds)
{
    public override string ToString() =>
        string.Join(", ", Stages.Select(s => $"{s.Silo}: [{s.FirstLayer}, {s.EndLayer})"));
}

/// <summary>
/// Cuts layers into contiguous stages in proportion to each silo's capacity. A pipeline runs at the
/// pace of its slowest stage, so the plan minimises the largest (stage cost / silo capacity), exactly,
/// by dynamic programming over cut points. Pure: no cluster needed to test it.
/// </summary>
public static class DeploymentPlanner
{
    /// <param name="layerCosts">Relative compute per layer (e.g. scaled by the fraction of tokens it computes); null: all equal.</param>
    /// <param name="bytesPerLayer">Weight bytes per layer, checked against each silo's memory budget; null: unchecked.</param>
    /// <param name="headCost">What the last stage does besides its layers (the final norm and the LM head over the rows
    /// whose logits are wanted), in the units of <paramref name="layerCosts"/>: it takes fewer layers by as much.</param>
    public static DeploymentPlan Plan(int layers, IReadOnlyList<SiloCapacity> silos,
        IReadOnlyList<double>? layerCosts = null, long? bytesPerLayer = null, double headCost = 0)
    {
        if (!(headCost >= 0)) throw new ArgumentException($"the head's cost must be >= 0, got {headCost}");
        if (layers <= 0) throw new ArgumentException($"a model needs at least one layer, got {layers}");
        if (silos.Count == 0) throw new ArgumentException("no silos are up to place stages on");
        if (silos.Count > layers)
            throw new ArgumentException($"{silos.Count} stages cannot share {layers} layers: every stage needs at least one layer");
        foreach (var s in silos)
            if (!(s.Capacity > 0) || double.IsInfinity(s.Capacity))
                throw new ArgumentException($"silo {s.Silo}: capacity must be a positive number, got {s.Capacity}");
        if (layerCosts is not null && layerCosts.Count != layers)
            throw new ArgumentException($"{layerCosts.Count} layer costs for {layers} layers");

        var prefix = new double[layers + 1];
        for (int l = 0; l < layers; l++)
        {
            double cost = layerCosts?[l] ?? 1.0;
            if (!(cost >= 0)) throw new ArgumentException($"layer {l}: cost must be >= 0, got {cost}");
            prefix[l + 1] = prefix[l] + cost;
        }

        int stages = silos.Count;
        // best[s, e]: the smallest bottleneck placing layers [0, e) on the first s silos; cut[s, e] the last cut.
        var best = new double[stages + 1, layers + 1];
        var cut = new int[stages + 1, layers + 1];
        for (int s = 0; s <= stages; s++)
            for (int e = 0; e <= layers; e++)
                best[s, e] = double.PositiveInfinity;
        best[0, 0] = 0;
        for (int s = 1; s <= stages; s++)
        {
            var silo = silos[s - 1];
            long? maxLayers = silo.MemoryBudgetBytes is { } budget && bytesPerLayer is > 0 ? budget / bytesPerLayer : null;
            for (int e = s; e <= layers - (stages - s); e++)
                for (int start = s - 1; start < e; start++)
                {
                    if (double.IsPositiveInfinity(best[s - 1, start])) continue;
                    if (maxLayers is { } m && e - start > m) continue;
                    double cost = prefix[e] - prefix[start] + (s == stages ? headCost : 0);
                    double bottleneck = Math.Max(best[s - 1, start], cost / silo.Capacity);
                    if (bottleneck < best[s, e])
                    {
                        best[s, e] = bottleneck;
                        cut[s, e] = start;
                    }
                }
        }
        if (double.IsPositiveInfinity(best[stages, layers]))
            throw new ArgumentException(
                $"the silos' memory budgets cannot hold {layers} layers of {bytesPerLayer} bytes: " +
                string.Join(", ", silos.Select(s => $"{s.Silo} {s.MemoryBudgetBytes?.ToString() ?? "unlimited"} bytes")));

        var assignments = new StageAssignment[stages];
        for (int s = stages, end = layers; s >= 1; s--)
        {
            int start = cut[s, end];
            assignments[s - 1] = new StageAssignment(s - 1, silos[s - 1].Silo, start, end);
            end = start;
        }
        return new DeploymentPlan(assignments, best[stages, layers]);
    }
}
