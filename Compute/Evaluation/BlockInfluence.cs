using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// How much each block changes the tokens it computes, from the cosine similarity of each token's block
/// input and output in the dense model: the mean over tokens, and the fraction of tokens above
/// <see cref="Threshold"/> (tokens the block barely turns). FTP's motivation: middle blocks leave most
/// tokens nearly unchanged, the first and last change them a lot.
/// </summary>
/// <param name="MeanCosine">Per block, the mean over tokens of cos(input, output).</param>
/// <param name="FractionAbove">Per block, the fraction of tokens whose cosine exceeds <see cref="Threshold"/>.</param>
public sealed record RedundancyProfile(double[] MeanCosine, double[] FractionAbove, double Threshold);

/// <summary>
/// ShortGPT's Block Influence (Men et al., 2024): BI_b = 1 − mean over tokens of cos(block input, block
/// output). A block that barely turns its tokens' hidden states has low influence and is the first to go.
/// </summary>
public static class BlockInfluence
{
    /// <summary>The FTP paper's line between a token a block barely changes and one it changes.</summary>
    public const double RedundantCosine = 0.8;

    /// <summary>BI of every block of <paramref name="model"/>, the mean taken over every token of every sequence.</summary>
    public static double[] Measure(TransformerStage model, IEnumerable<int[]> sequences) =>
        [.. Profile(model, sequences).MeanCosine.Select(cosine => 1 - cosine)];

    /// <summary>The redundancy profile of every block over every token of every sequence, run densely.</summary>
    public static RedundancyProfile Profile(TransformerStage model, IEnumerable<int[]> sequences, double threshold = RedundantCosine)
    {
        var c = model.Config;
        var cosineSums = new double[c.Layers];
        var above = new long[c.Layers];
        long tokens = 0;
        foreach (var ids in sequences)
        {
            if (ids.Length > c.MaxSeqLen)
                throw new ArgumentException($"a sequence of {ids.Length} tokens is longer than the model's context of {c.MaxSeqLen}");
            var hidden = new float[ids.Length * c.Dim];
            model.Embed(ids, hidden);
            var input = new float[hidden.Length];
            for (int b = 0; b < c.Layers; b++)
            {
                hidden.CopyTo(input, 0);
                RunOneBlock(model, b, ids.Length, hidden);
                for (int t = 0; t < ids.Length; t++)
                {
                    double cosine = Cosine(input.AsSpan(t * c.Dim, c.Dim), hidden.AsSpan(t * c.Dim, c.Dim));
                    cosineSums[b] += cosine;
                    if (cosine > threshold) above[b]++;
                }
            }
            tokens += ids.Length;
        }
        if (tokens == 0) throw new ArgumentException("a redundancy profile needs at least one token");
        return new([.. cosineSums.Select(sum => sum / tokens)], [.. above.Select(n => (double)n / tokens)], threshold);
    }

    /// <summary>
    /// Block <paramref name="block"/> alone over every row, all others computing nothing. A fresh cache each
    /// time: a block attends only over its own layer's cache, and the rows must come after whatever the
    /// cache already holds for any layer.
    /// </summary>
    private static void RunOneBlock(TransformerStage model, int block, int length, float[] hidden)
    {
        var computeRows = new int[]?[model.Config.Layers];
        for (int b = 0; b < computeRows.Length; b++) computeRows[b] = b == block ? null : [];
        model.Forward(TokenRow.Consecutive(model.NewCache(), 0, length), hidden, computeRows);
    }

    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
        }
        return dot / Math.Sqrt(aa * bb);
    }
}
