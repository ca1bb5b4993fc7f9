using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Ilgpu;
using FtpCluster.Compute.Tests.Inference;

namespace FtpCluster.Compute.Tests.Ftp;

/// <summary>
/// Each block's attention score per token (what the router's score feature comes from) against the float64
/// reference. Scores are probabilities (at most 1), compared to 1e-5 absolute.
/// </summary>
public sealed class AttentionScoreTests(IlgpuFixture fixture) : IClassFixture<IlgpuFixture>
{
    private const double Tolerance = 1e-5;
    private static readonly int[] Ids = [1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283];

    [SharedModelsTheory]
    [InlineData("stories260K/stories260K.bin")]
    [InlineData("aidreams260K/aidreams260K.bin")]
    public void Scores_match_the_float64_reference_dense_and_with_subsets(string file)
    {
        using var device = new CpuDevice();
        using var checkpoint = Checkpoint.Open(SharedModels.PathTo(file));
        using var model = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), device), device);
        int layers = model.Config.Layers, n = Ids.Length;
        var random = new Random(11);
        for (int trial = 0; trial < 3; trial++)
        {
            var subsets = new int[]?[layers];
            if (trial > 0)
                for (int b = 0; b < layers; b++)
                    subsets[b] = Enumerable.Range(0, n).Where(_ => random.NextDouble() < 0.6).ToArray();
            var scores = new float[layers * n];
            var hidden = new float[n * model.Config.Dim];
            model.Embed(Ids, hidden);
            model.Forward(TokenRow.Consecutive(model.NewCache(), 0, n), hidden, subsets, scores);

            new ReferenceModel(checkpoint).Logits(Ids, subsets, out var expected);
            for (int b = 0; b < layers; b++)
                AssertScores(expected[b], scores.AsSpan(b * n, n), $"trial {trial}, block {b}");
        }
    }

    [SharedModelsFact]
    public void Asking_for_scores_changes_no_hidden_row()
    {
        using var device = new CpuDevice();
        using var model = GoldenTests.Load("stories260K/stories260K.bin", device);
        int n = Ids.Length;
        int[]?[] subsets = [null, [0, 2, 3, 7, 8, 15], null, [], [1, 4, 15]];
        float[] Run(bool withScores)
        {
            var hidden = new float[n * model.Config.Dim];
            model.Embed(Ids, hidden);
            model.Forward(TokenRow.Consecutive(model.NewCache(), 0, n), hidden, subsets,
                withScores ? new float[model.Config.Layers * n] : Span<float>.Empty);
            return hidden;
        }
        Assert.Equal(Run(false), Run(true));
    }

    /// <summary>
    /// A step over a KV cache scores its rows by its own queries only. Each step's tokens are the last of
    /// the prefix it completes, so the reference over that prefix has exactly those queries seeing them.
    /// </summary>
    [SharedModelsFact]
    public void Scores_of_a_step_over_a_cache_count_only_that_steps_queries()
    {
        using var device = new CpuDevice();
        using var checkpoint = Checkpoint.Open(SharedModels.PathTo("stories260K/stories260K.bin"));
        using var model = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), device), device);
        int layers = model.Config.Layers;
        var cache = model.NewCache();
        // (first position, count, per block the step-relative rows computed)
        (int First, int Count, int[]?[] Subsets)[] steps =
        [
            (0, 10, [null, [0, 1, 4, 6, 9], null, null, null]),
            (10, 3, [null, null, [0, 2], null, null]),
            (13, 1, [null, null, null, null, null]),
        ];
        var computed = Enumerable.Range(0, layers).Select(_ => new List<int>()).ToArray();
        foreach (var (first, count, subsets) in steps)
        {
            var hidden = new float[count * model.Config.Dim];
            model.Embed(Ids.AsSpan(first, count), hidden);
            var scores = new float[layers * count];
            model.Forward(TokenRow.Consecutive(cache, first, count), hidden, subsets, scores);

            for (int b = 0; b < layers; b++)
                computed[b].AddRange((subsets[b] ?? Enumerable.Range(0, count).ToArray()).Select(i => first + i));
            new ReferenceModel(checkpoint).Logits(Ids[..(first + count)], computed.Select(c => c.ToArray()).ToArray<int[]?>(), out var expected);
            for (int b = 0; b < layers; b++)
                AssertScores(expected[b][first..], scores.AsSpan(b * count, count), $"step at {first}, block {b}");
        }
    }

    [Fact]
    public void Ilgpu_scores_match_cpu()
    {
        string path = IlgpuForwardTests.WriteTinyLlama2c(Path.Combine(fixture.Folder, "scores.bin"),
            dim: 32, hidden: 40, layers: 2, heads: 4, kvHeads: 2, vocab: 37, seqLen: 16);
        float[] Scores(IComputeDevice device)
        {
            using var checkpoint = Checkpoint.Open(path);
            using var stage = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), device), device);
            KvCache a = stage.NewCache(), b = stage.NewCache();
            TokenRow[] rows = [.. TokenRow.Consecutive(a, 0, 5), .. TokenRow.Consecutive(b, 0, 3)];
            var hidden = new float[rows.Length * checkpoint.Config.Dim];
            stage.Embed([1, 5, 9, 13, 17, 2, 30, 36], hidden);
            var scores = new float[2 * rows.Length];
            stage.Forward(rows, hidden, [null, [0, 2, 4, 5, 7]], scores);
            return scores;
        }
        var expected = Scores(fixture.Cpu);
        var actual = Scores(fixture.Ilgpu);
        AssertScores(expected.Select(s => (double)s).ToArray(), actual, "ILGPU against CPU");
    }

    private static void AssertScores(double[] expected, ReadOnlySpan<float> actual, string where)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int r = 0; r < expected.Length; r++)
        {
            if (double.IsNaN(expected[r]))
                Assert.True(float.IsNaN(actual[r]), $"{where}, row {r}: skipped, so its score should be NaN, got {actual[r]}");
            else
                Assert.True(Math.Abs(actual[r] - expected[r]) <= Tolerance,
                    $"{where}, row {r}: score {actual[r]} against reference {expected[r]}");
        }
    }
}
