using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Ftp;

/// <summary>Blocks [First, End) of a model: the layers of one stage.</summary>
public readonly record struct LayerRange(int First, int End)
{
    public int Count => End - First;

    public override string ToString() => $"[{First}, {End})";

    /// <summary>Throws unless <paramref name="stages"/> are non-empty, in order, and cover blocks [0, <paramref name="blocks"/>) without gaps.</summary>
    public static void RequireCover(IReadOnlyList<LayerRange> stages, int blocks)
    {
        int next = 0;
        foreach (var stage in stages)
        {
            if (stage.First != next || stage.End <= stage.First)
                throw new ArgumentException($"stage {stage} does not follow on from block {next}: stages must be non-empty, in order and without gaps");
            next = stage.End;
        }
        if (next != blocks)
            throw new ArgumentException($"the stages cover blocks [0, {next}) of a {blocks}-block model");
    }
}

/// <summary>
/// Which blocks compute each row of a step, decided once after block 0 (the batch-inference router of the
/// FTP paper's revision). Across stages the plan must be known before rows are sent, so the first stage
/// makes it and every stage receives exactly the rows its blocks compute.
/// Rows are the step's rows in batch order.
/// </summary>
public sealed class OnePassPlan
{
    private readonly int[][] _blockRows;

    /// <param name="blockRows">Per block, the sorted distinct rows it computes.</param>
    public OnePassPlan(int rows, IReadOnlyList<int[]> blockRows)
    {
        if (blockRows.Count == 0) throw new ArgumentException("a plan covers at least one block");
        for (int b = 0; b < blockRows.Count; b++)
            for (int i = 0; i < blockRows[b].Length; i++)
            {
                int r = blockRows[b][i];
                if (r < 0 || r >= rows || i > 0 && r <= blockRows[b][i - 1])
                    throw new ArgumentException($"block {b}: rows must be sorted, distinct and in [0, {rows}); found {r} at index {i}");
            }
        Rows = rows;
        _blockRows = [.. blockRows];
    }

    public int Rows { get; }
    public int Blocks => _blockRows.Length;

    /// <summary>Per block, the sorted rows it computes: the computeRows of <see cref="Inference.TransformerStage.Forward"/>.</summary>
    public IReadOnlyList<int[]> BlockRows => _blockRows;

    public bool Computes(int row, int block) => Array.BinarySearch(_blockRows[block], row) >= 0;

    /// <summary>The blocks that compute <paramref name="row"/>, in order.</summary>
    public int[] BlocksOf(int row) => Enumerable.Range(0, Blocks).Where(b => Computes(row, b)).ToArray();

    /// <summary>
    /// Runs a stage that starts at block 0 — the first stage of a pipeline, or a whole model — with one-pass
    /// routing: block 0 computes every row, the plan for every block of the model is made from the features
    /// after it, and the stage's later blocks compute the rows the plan gives them. The one place the
    /// cluster's first stage and the single-process <see cref="TokenPruner"/> make their plans, so the two
    /// route identically.
    /// </summary>
    /// <param name="batch">The step's rows; left with their scores as the plan saw them (after block 0).</param>
    /// <param name="attentionScores">[stage blocks, rows]: block 0's scores, from which the plan is made. The plan
    /// needs no other block's, so they are not computed (costing attention time): their entries are NaN.</param>
    public static OnePassPlan ForwardFirstStage(TransformerStage stage, ReadOnlySpan<TokenRow> rows, Span<float> hidden,
        RoutingBatch batch, SparsitySchedule schedule, ITokenRouter router, RoutingOptions options, float[] attentionScores,
        RouterFeatures[]?[]? featuresUsed = null)
    {
        if (stage.Slice.Spec.FirstLayer != 0)
            throw new ArgumentException($"one-pass routing is planned at block 0; this stage starts at block {stage.Slice.Spec.FirstLayer}");
        schedule.RequireBlocks(stage.Config.Layers);
        int n = rows.Length;
        OnePassPlan? plan = null;
        OnePassPlan Plan()
        {
            if (plan is null)
            {
                batch.Update(attentionScores.AsSpan(0, n));
                plan = Decide(batch, schedule, router, options.PruneNewest, options.Stages, featuresUsed);
            }
            return plan;
        }
        int[]? ChooseRows(int b)
        {
            if (b == 0) return null;
            var chosen = Plan().BlockRows[b];
            return chosen.Length == n ? null : chosen; // every row: the dense path, without gathering
        }
        if (attentionScores.Length != stage.Slice.Blocks.Count * n)
            throw new ArgumentException($"attentionScores has {attentionScores.Length} entries for {stage.Slice.Blocks.Count} blocks of {n} rows");
        attentionScores.AsSpan(n).Fill(float.NaN);
        stage.ForwardRouted(rows, hidden, ChooseRows, attentionScores.AsSpan(0, n));
        return Plan(); // a stage of block 0 alone plans after its only block
    }

    /// <summary>
    /// Makes the plan from the features after block 0, which has computed every row: the plan needs a
    /// score for every token, and block 0 is the first place one exists (before it every score is the
    /// initial value). So s_0 is not applied in one-pass routing.
    /// Per block b ≥ 1, the router chooses with s_b as in block-by-block routing but from the same
    /// features. With <paramref name="stages"/>, it chooses once per stage segment instead — blocks
    /// [max(1, first), end) share one set sized by the segment's mean s_b — so a token skips whole stages
    /// and never crosses to them.
    /// </summary>
    /// <param name="batch">The step's rows, updated with block 0's scores.</param>
    /// <param name="featuresUsed">When not null, one entry per block receives the features its rows were
    /// chosen from (block 0's entry is left null: it was not routed).</param>
    public static OnePassPlan Decide(RoutingBatch batch, SparsitySchedule schedule, ITokenRouter router, bool pruneNewest,
        IReadOnlyList<LayerRange>? stages = null, RouterFeatures[]?[]? featuresUsed = null)
    {
        int blocks = schedule.Blocks;
        if (featuresUsed is not null && featuresUsed.Length != blocks)
            throw new ArgumentException($"featuresUsed has {featuresUsed.Length} entries for {blocks} blocks");
        var blockRows = new int[blocks][];
        blockRows[0] = Enumerable.Range(0, batch.Rows).ToArray();
        var segments = stages ?? Enumerable.Range(0, blocks).Select(b => new LayerRange(b, b + 1)).ToArray();
        LayerRange.RequireCover(segments, blocks);
        // Every segment is routed from the same scores, so segments of equal sparsity (a uniform schedule's)
        // share one set of features; each still asks the router, whose draws (a random router's) go in order.
        RouterFeatures[]? features = null;
        double featuresSparsity = double.NaN;
        foreach (var segment in segments)
        {
            int first = Math.Max(1, segment.First);
            if (first >= segment.End) continue;
            double sparsity = schedule.MeanOf(first, segment.End);
            if (features is null || sparsity != featuresSparsity)
            {
                features = batch.Features(sparsity);
                featuresSparsity = sparsity;
            }
            var rows = batch.Choose(router, features, sparsity, pruneNewest);
            for (int b = first; b < segment.End; b++)
            {
                blockRows[b] = rows;
                if (featuresUsed is not null) featuresUsed[b] = features;
            }
        }
        return new OnePassPlan(batch.Rows, blockRows);
    }
}
