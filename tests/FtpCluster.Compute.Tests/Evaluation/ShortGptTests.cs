using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Inference;

namespace FtpCluster.Compute.Tests.Evaluation;

public sealed class ShortGptTests
{
    [SharedModelsFact]
    public void Block_influence_matches_a_float64_computation()
    {
        using var device = new CpuDevice();
        using var checkpoint = Checkpoint.Open(SharedModels.PathTo(AidreamsSequences.ModelFile));
        using var model = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), device), device);
        var sequences = AidreamsSequences.Make(model, sampled: 1);

        var measured = BlockInfluence.Measure(model, sequences.Select(s => s.Ids));
        var expected = ReferenceInfluence(new ReferenceModel(checkpoint), sequences, model.Config.Layers);
        Assert.Equal(model.Config.Layers, measured.Length);
        for (int b = 0; b < expected.Length; b++) Assert.Equal(expected[b], measured[b], 5);
        // The measurement means something: blocks differ in influence.
        Assert.True(expected.Max() - expected.Min() > 0.01);
    }

    [SharedModelsFact]
    public void Redundancy_profile_counts_the_tokens_above_the_threshold()
    {
        using var device = new CpuDevice();
        using var model = TransformerStage.Load(SharedModels.PathTo(AidreamsSequences.ModelFile), device);
        var ids = AidreamsSequences.Make(model, sampled: 1).Select(s => s.Ids).ToArray();
        var profile = BlockInfluence.Profile(model, ids);
        Assert.Equal(BlockInfluence.RedundantCosine, profile.Threshold);
        Assert.Equal(BlockInfluence.Measure(model, ids), profile.MeanCosine.Select(c => 1 - c));
        Assert.All(profile.FractionAbove, f => Assert.InRange(f, 0, 1));
        // A cosine is never above 1 and always above −1 − ε: no token, then every token.
        Assert.All(BlockInfluence.Profile(model, ids, threshold: 1).FractionAbove, f => Assert.Equal(0, f));
        Assert.All(BlockInfluence.Profile(model, ids, threshold: -1.01).FractionAbove, f => Assert.Equal(1, f));
        // At a block's own mean cosine the tokens split: some above, some not.
        var atMean = Enumerable.Range(0, profile.MeanCosine.Length).Select(b => BlockInfluence.Profile(model, ids, profile.MeanCosine[b]).FractionAbove[b]);
        Assert.All(atMean, f => Assert.True(f > 0 && f < 1, $"fraction {f}"));
    }

    [SharedModelsFact]
    public void The_lowest_influence_blocks_are_removed_and_compute_no_token()
    {
        using var device = new CpuDevice();
        using var checkpoint = Checkpoint.Open(SharedModels.PathTo(AidreamsSequences.ModelFile));
        using var model = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), device), device);
        var sequences = AidreamsSequences.Make(model, sampled: 1);
        var reference = new ReferenceModel(checkpoint);
        var influence = ReferenceInfluence(reference, sequences, model.Config.Layers);
        var byInfluence = Enumerable.Range(0, influence.Length).OrderBy(b => influence[b]).ToArray();
        // The choice below is only meaningful if the 2nd and 3rd lowest are not a float32 rounding apart.
        Assert.True(influence[byInfluence[2]] - influence[byInfluence[1]] > 1e-4);

        var context = new EvalMethodContext(model, sequences);
        var shortGpt = new ShortGptMethod(model, context.BlockInfluence, sparsityTarget: 0.5);
        Assert.Equal(byInfluence.Take(2).Order(), shortGpt.RemovedBlocks);

        var ids = sequences[0].Ids;
        var output = shortGpt.Run(ids);
        var subsets = new int[]?[model.Config.Layers];
        for (int b = 0; b < subsets.Length; b++)
        {
            bool removed = shortGpt.RemovedBlocks.Contains(b);
            Assert.Equal(removed ? [] : Enumerable.Range(0, ids.Length), output.ComputedRows[b]);
            subsets[b] = removed ? [] : null;
        }
        var expected = reference.Logits(ids, [.. subsets.Select(s => s ?? Enumerable.Range(0, ids.Length).ToArray())]);
        int vocab = model.Config.VocabSize;
        for (int t = 0; t < ids.Length; t++)
            for (int v = 0; v < vocab; v++)
                Assert.True(Math.Abs(expected[t][v] - output.Logits[t * vocab + v]) < 1e-4 * (1 + Math.Abs(expected[t][v])), $"position {t}, token {v}");
    }

    private static readonly double[] Influence = [0.4, 0.1, 0.3, 0.2];
    private static readonly int[] LowestInfluenceFirst = [1, 3, 2, 0];

    [SharedModelsTheory]
    [InlineData(0.1, 0)]    // 0.4 blocks rounds to none
    [InlineData(0.3, 1)]    // 1.2
    [InlineData(0.375, 2)]  // 1.5 rounds away from zero
    [InlineData(0.5, 2)]
    [InlineData(0.9, 4)]    // 3.6: every block
    public void Round_target_times_layers_blocks_are_removed(double target, int removed)
    {
        using var device = new CpuDevice();
        using var model = TransformerStage.Load(SharedModels.PathTo(AidreamsSequences.ModelFile), device);
        var shortGpt = new ShortGptMethod(model, Influence, target);
        Assert.Equal(LowestInfluenceFirst.Take(removed).Order(), shortGpt.RemovedBlocks);
    }

    /// <summary>1 − mean over all tokens of cos(block input, block output), in float64 from the reference model.</summary>
    private static double[] ReferenceInfluence(ReferenceModel reference, IEnumerable<EvalSequence> sequences, int layers)
    {
        var sums = new double[layers];
        long tokens = 0;
        foreach (var sequence in sequences)
        {
            var states = reference.HiddenStates(sequence.Ids);
            for (int b = 0; b < layers; b++)
                for (int t = 0; t < sequence.Ids.Length; t++)
                {
                    double[] x = states[b][t], y = states[b + 1][t];
                    sums[b] += x.Zip(y, (p, q) => p * q).Sum() / Math.Sqrt(x.Sum(p => p * p) * y.Sum(q => q * q));
                }
            tokens += sequence.Ids.Length;
        }
        return [.. sums.Select(s => 1 - s / tokens)];
    }
}
