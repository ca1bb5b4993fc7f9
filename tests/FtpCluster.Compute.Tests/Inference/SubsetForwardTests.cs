using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Inference;

/// <summary>The FTP primitive: a block computes only a subset of a sequence's tokens.</summary>
public sealed class SubsetForwardTests
{
    private static readonly int[] Ids = [1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283];

    [SharedModelsFact]
    public void Every_row_selected_equals_dense_bit_for_bit()
    {
        using var device = new CpuDevice();
        using var model = GoldenTests.Load("stories260K/stories260K.bin", device);
        var dense = Run(model, Ids, null);
        var all = Enumerable.Range(0, Ids.Length).ToArray();
        var selected = Run(model, Ids, Enumerable.Repeat(all, model.Config.Layers).ToArray<int[]?>());
        Assert.Equal(dense, selected);
    }

    [SharedModelsFact]
    public void Random_subsets_match_the_float64_reference()
    {
        using var device = new CpuDevice();
        using var checkpoint = Checkpoint.Open(SharedModels.PathTo("stories260K/stories260K.bin"));
        using var model = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), device), device);
        var random = new Random(7);
        for (int trial = 0; trial < 3; trial++)
        {
            // Each block keeps a random half-or-more of the tokens; block 0 sometimes keeps all.
            var subsets = new int[]?[model.Config.Layers];
            for (int b = 0; b < subsets.Length; b++)
                subsets[b] = trial == 0 && b == 0 ? null
                    : Enumerable.Range(0, Ids.Length).Where(_ => random.NextDouble() < 0.6).ToArray();
            var logits = Run(model, Ids, subsets);
            var expected = new ReferenceModel(checkpoint).Logits(Ids, subsets.Select(s => s ?? Enumerable.Range(0, Ids.Length).ToArray()).ToArray());
            for (int t = 0; t < Ids.Length; t++)
                AssertClose(expected[t], logits.AsSpan(t * model.Config.VocabSize, model.Config.VocabSize), 1e-5, $"trial {trial}, position {t}");
        }
    }

    /// <summary>
    /// Blocks that compute the same rows run on them gathered once: the logits, the caches and the scores
    /// equal those of the same blocks run one by one (as single-block stages, which gather and scatter each
    /// block), bit for bit.
    /// </summary>
    [SharedModelsFact]
    public void Blocks_sharing_a_subset_equal_the_blocks_run_one_by_one_bit_for_bit()
    {
        using var device = new CpuDevice();
        using var checkpoint = Checkpoint.Open(SharedModels.PathTo("stories260K/stories260K.bin"));
        var config = checkpoint.Config;
        int n = Ids.Length, layers = config.Layers;
        int[] kept = [0, 3, 4, 9, 12, 13, 14, 15];
        // Blocks 1 and 2 share rows (as equal arrays, not one array), block 3 computes others, block 4 every row.
        int[]?[] subsets = [null, kept, [.. kept], [0, 1, 2, 13, 14, 15], null];
        Assert.Equal(layers, subsets.Length);

        using var whole = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(config), device), device);
        var cache = whole.NewCache();
        var hidden = new float[n * config.Dim];
        var scores = new float[layers * n];
        whole.Embed(Ids, hidden);
        whole.Forward(TokenRow.Consecutive(cache, 0, n), hidden, subsets, scores);
        var logits = new float[n * config.VocabSize];
        whole.Logits(hidden, n, logits);

        var stepHidden = new float[n * config.Dim];
        var stepLogits = new float[n * config.VocabSize];
        for (int b = 0; b < layers; b++)
        {
            using var block = new TransformerStage(ModelSlice.Load(checkpoint, new SliceSpec(b, b + 1, b == 0, b == layers - 1), device), device);
            if (b == 0) block.Embed(Ids, stepHidden);
            var blockCache = block.NewCache();
            var blockScores = new float[n];
            block.Forward(TokenRow.Consecutive(blockCache, 0, n), stepHidden, [subsets[b]], blockScores);
            Assert.Equal(blockScores, scores.AsSpan(b * n, n).ToArray());
            Assert.Equal(device.ToArray(blockCache.Layer(b).Keys), device.ToArray(cache.Layer(b).Keys));
            if (b == layers - 1) block.Logits(stepHidden, n, stepLogits);
        }
        Assert.Equal(stepLogits, logits);
    }

    [SharedModelsFact]
    public void Scores_asked_for_the_first_blocks_only_equal_those_of_every_block()
    {
        using var device = new CpuDevice();
        using var model = GoldenTests.Load("stories260K/stories260K.bin", device);
        int n = Ids.Length, layers = model.Config.Layers;
        int[]?[] subsets = [null, [0, 5, 6, 15], null, [1, 2, 15], [15]];
        float[] Scores(int blocks, out float[] logits)
        {
            var hidden = new float[n * model.Config.Dim];
            var scores = new float[blocks * n];
            model.Embed(Ids, hidden);
            model.Forward(TokenRow.Consecutive(model.NewCache(), 0, n), hidden, subsets, scores);
            logits = new float[n * model.Config.VocabSize];
            model.Logits(hidden, n, logits);
            return scores;
        }
        var every = Scores(layers, out var expectedLogits);
        var firstTwo = Scores(2, out var logits);
        Assert.Equal(every.AsSpan(0, 2 * n).ToArray(), firstTwo);
        Assert.Equal(expectedLogits, logits);
        var hidden = new float[n * model.Config.Dim];
        var error = Assert.Throws<ArgumentException>(() =>
            model.Forward(TokenRow.Consecutive(model.NewCache(), 0, n), hidden, subsets, new float[(layers + 1) * n]));
        Assert.Contains("at most 5 blocks", error.Message);
    }

    [SharedModelsFact]
    public void A_skipping_block_gets_cache_entries_only_for_the_tokens_it_computed()
    {
        using var device = new CpuDevice();
        using var model = GoldenTests.Load("stories260K/stories260K.bin", device);
        var cache = model.NewCache();
        var rows = Enumerable.Range(0, Ids.Length).Select(p => new TokenRow(cache, p)).ToArray();
        var hidden = new float[Ids.Length * model.Config.Dim];
        model.Embed(Ids, hidden);
        int[] kept = [0, 3, 4, 9, 15];
        var subsets = new int[]?[model.Config.Layers];
        subsets[2] = kept;
        subsets[4] = [];
        model.Forward(rows, hidden, subsets);
        Assert.Equal(Ids.Length, cache.Layer(0).Count);
        Assert.Equal(kept, cache.Layer(2).Positions.ToArray());
        Assert.Equal(0, cache.Layer(4).Count);
    }

    [SharedModelsFact]
    public void Decoding_after_a_pruned_prefill_matches_the_reference()
    {
        // Prefill the first 12 tokens with block 1 skipping some, then decode 4 tokens one at a time
        // (every block computes them): the same as a single pass with those subsets.
        using var device = new CpuDevice();
        using var checkpoint = Checkpoint.Open(SharedModels.PathTo("stories260K/stories260K.bin"));
        using var model = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), device), device);
        int prefill = 12, vocab = model.Config.VocabSize, dim = model.Config.Dim;
        int[] skipAtBlock1 = [2, 5, 6, 10];
        var cache = model.NewCache();
        var prefillSubsets = new int[]?[model.Config.Layers];
        prefillSubsets[1] = Enumerable.Range(0, prefill).Except(skipAtBlock1).ToArray();
        var hidden = new float[prefill * dim];
        model.Embed(Ids.AsSpan(0, prefill), hidden);
        model.Forward(Enumerable.Range(0, prefill).Select(p => new TokenRow(cache, p)).ToArray(), hidden, prefillSubsets);

        var fullSubsets = new int[]?[model.Config.Layers];
        fullSubsets[1] = Enumerable.Range(0, Ids.Length).Except(skipAtBlock1).ToArray();
        var expected = new ReferenceModel(checkpoint).Logits(Ids, fullSubsets.Select(s => s ?? Enumerable.Range(0, Ids.Length).ToArray()).ToArray());
        var step = new float[dim];
        var logits = new float[vocab];
        for (int p = prefill; p < Ids.Length; p++)
        {
            model.Embed([Ids[p]], step);
            model.Forward([new TokenRow(cache, p)], step);
            model.Logits(step, 1, logits);
            AssertClose(expected[p], logits, 1e-5, $"decode position {p}");
        }
    }

    [SharedModelsFact]
    public void Two_sequences_in_one_batch_equal_each_run_alone()
    {
        using var device = new CpuDevice();
        using var model = GoldenTests.Load("stories260K/stories260K.bin", device);
        int[] a = Ids[..10], b = Ids[4..];
        var alone = Run(model, a, null).Concat(Run(model, b, null)).ToArray();

        var cacheA = model.NewCache();
        var cacheB = model.NewCache();
        var rows = Enumerable.Range(0, a.Length).Select(p => new TokenRow(cacheA, p))
            .Concat(Enumerable.Range(0, b.Length).Select(p => new TokenRow(cacheB, p))).ToArray();
        var hidden = new float[rows.Length * model.Config.Dim];
        model.Embed(a.Concat(b).ToArray(), hidden);
        model.Forward(rows, hidden);
        var batched = new float[rows.Length * model.Config.VocabSize];
        model.Logits(hidden, rows.Length, batched);
        for (int r = 0; r < rows.Length; r++)
            AssertClose(alone.AsSpan(r * model.Config.VocabSize, model.Config.VocabSize).ToArray().Select(f => (double)f).ToArray(),
                batched.AsSpan(r * model.Config.VocabSize, model.Config.VocabSize), 1e-6, $"row {r}");
    }

    [SharedModelsFact]
    public void Rows_of_a_sequence_out_of_order_are_refused()
    {
        using var device = new CpuDevice();
        using var model = GoldenTests.Load("stories260K/stories260K.bin", device);
        var cacheA = model.NewCache();
        var cacheB = model.NewCache();
        var hidden = new float[3 * model.Config.Dim];
        var error = Assert.Throws<ArgumentException>(() =>
            model.Forward([new TokenRow(cacheA, 0), new TokenRow(cacheB, 0), new TokenRow(cacheA, 1)], hidden));
        Assert.Contains("contiguous", error.Message);
        error = Assert.Throws<ArgumentException>(() =>
            model.Forward([new TokenRow(cacheA, 1), new TokenRow(cacheA, 0)], hidden.AsSpan(0, 2 * model.Config.Dim)));
        Assert.Contains("increase", error.Message);

        // A batch refused because of its last row has changed no cache, the first rows' included.
        model.Forward([new TokenRow(cacheB, 0)], hidden.AsSpan(0, model.Config.Dim));
        error = Assert.Throws<ArgumentException>(() => model.Forward([new TokenRow(cacheA, 0), new TokenRow(cacheA, 1), new TokenRow(cacheB, 0)], hidden));
        Assert.Contains("position 0 is not after the 0", error.Message);
        Assert.Equal(-1, cacheA.LastPosition);
        Assert.Equal(0, cacheB.LastPosition);
    }

    private static float[] Run(TransformerStage model, int[] ids, int[]?[]? subsets)
    {
        var cache = model.NewCache();
        var rows = Enumerable.Range(0, ids.Length).Select(p => new TokenRow(cache, p)).ToArray();
        var hidden = new float[ids.Length * model.Config.Dim];
        model.Embed(ids, hidden);
        model.Forward(rows, hidden, subsets);
        var logits = new float[ids.Length * model.Config.VocabSize];
        model.Logits(hidden, ids.Length, logits);
        return logits;
    }

    internal static void AssertClose(double[] expected, ReadOnlySpan<float> actual, double tolerance, string where)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }
        double relative = Math.Sqrt(diff / norm);
        Assert.True(relative < tolerance, $"{where}: relative error {relative:E2} exceeds {tolerance:E0}");
    }
}
