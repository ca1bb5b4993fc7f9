using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Ilgpu;

/// <summary>Whole forward passes through <see cref="TransformerStage"/> on <see cref="IlgpuDevice"/> (CPU accelerator) against <see cref="CpuDevice"/>.</summary>
public sealed class IlgpuForwardTests(IlgpuFixture fixture) : IClassFixture<IlgpuFixture>
{
    /// <summary>
    /// A random llama2.c model with grouped-query attention (4 heads, 2 KV heads) and sizes off the GEMM
    /// tile, run on a batch of two sequences with an FTP subset in the second block, then one decode
    /// step for both: every kernel, the tiled GEMM for the batch's 10 rows and the GEMV for the subset and decode.
    /// </summary>
    [Fact]
    public void Tiny_random_model_logits_match_cpu()
    {
        string path = WriteTinyLlama2c(Path.Combine(fixture.Folder, "tiny.bin"),
            dim: 32, hidden: 40, layers: 2, heads: 4, kvHeads: 2, vocab: 37, seqLen: 16);
        var expected = RunBatchAndDecode(path, fixture.Cpu);
        var actual = RunBatchAndDecode(path, fixture.Ilgpu);
        Assert.Equal(expected.Length, actual.Length);
        for (int step = 0; step < expected.Length; step++)
            Numerics.AssertClose(expected[step], actual[step], what: $"logits of step {step}");
    }

    /// <summary>
    /// A prompt of 70 tokens: every product of the prefill, and the LM head over all its rows, takes the blocked GEMM
    /// (64 rows or more), its second row tile nearly empty. Against the CPU device, in f32 and f16.
    /// </summary>
    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.F16)]
    public void A_long_prefill_matches_cpu(TensorDType storage)
    {
        string path = WriteTinyLlama2c(Path.Combine(fixture.Folder, "long.bin"),
            dim: 32, hidden: 40, layers: 2, heads: 4, kvHeads: 2, vocab: 37, seqLen: 80);
        var ids = Enumerable.Range(0, 70).Select(i => (i * 7 + 3) % 37).ToArray();
        float[] Logits(IComputeDevice device)
        {
            using var checkpoint = Checkpoint.Open(path);
            using var stage = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), device, storage), device);
            return Generator.AllLogits(stage, ids);
        }
        Numerics.AssertClose(Logits(fixture.Cpu), Logits(fixture.Ilgpu), what: $"logits of a 70-token prompt, {storage}");
    }

    /// <summary>
    /// The work one decode step puts on the device's stream: per block, the q, k and v products together (their RMSNorm
    /// in the same kernel), RoPE on q and k together, the append to the KV cache (keys, values, positions), attention, the
    /// output projection added onto the residual, the gated MLP product (its RMSNorm in it) and the down projection added
    /// onto the residual. On a GPU each launch
    /// costs microseconds, about what a small model's matrices take, so a fused step that comes apart shows here.
    /// (The cache here is short: over more than 64 keys attention is two launches, the splits and their combination.)
    /// </summary>
    [Fact]
    public void A_decode_step_launches_seven_operations_per_block()
    {
        const int layers = 3;
        string path = WriteTinyLlama2c(Path.Combine(fixture.Folder, "launches.bin"),
            dim: 32, hidden: 40, layers: layers, heads: 4, kvHeads: 2, vocab: 37, seqLen: 16);
        using var checkpoint = Checkpoint.Open(path);
        using var stage = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), fixture.Ilgpu), fixture.Ilgpu);
        using var cache = stage.NewCache();
        var prompt = new float[3 * checkpoint.Config.Dim];
        stage.Embed([1, 5, 9], prompt);
        stage.Forward(TokenRow.Consecutive(cache, 0, 3), prompt);
        var step = new float[checkpoint.Config.Dim];
        stage.Embed([13], step);

        long before = fixture.Ilgpu.Launches;
        stage.Forward([new TokenRow(cache, 3)], step);
        Assert.Equal(7 * layers, fixture.Ilgpu.Launches - before);
    }

    /// <summary>
    /// <c>bench model --profile</c>'s measurement: two decode steps on a device created with profiling, every operation
    /// timed and counted by kind, the prefill before them left out.
    /// </summary>
    [Fact]
    public void A_profiled_decode_times_every_operation_by_kind()
    {
        const int layers = 2, tokens = 2;
        string path = WriteTinyLlama2c(Path.Combine(fixture.Folder, "profiled.bin"),
            dim: 32, hidden: 40, layers: layers, heads: 4, kvHeads: 2, vocab: 37, seqLen: 16);
        using var device = IlgpuDevice.Create(IlgpuTestTarget.Target, profiling: true);
        using var stage = TransformerStage.Load(path, device);
        var profile = ModelBenchmark.ProfileDecode(stage, device, new ModelBenchmarkOptions(PromptTokens: 3), tokens);

        var counts = profile.Operations.ToDictionary(o => o.Kind, o => o.Count);
        Assert.Equal(tokens, counts["rmsnorm"]); // the final norm: the blocks' are in their products
        Assert.Equal(tokens * layers, counts["rmsnorm qkv gemv f32"]);
        Assert.Equal(tokens, counts["gemv f32"]); // the LM head
        Assert.Equal(tokens * 2 * layers, counts["gemv add f32"]);
        Assert.Equal(tokens * layers, counts["rmsnorm swiglu gemv f32"]);
        Assert.Equal(tokens * layers, counts["rope"]);
        Assert.Equal(tokens * layers, counts["cache append"]);
        Assert.Equal(tokens * layers, counts["tiled attention"]);
        Assert.Equal(tokens * (7 * layers + 2), profile.Count);
        Assert.All(profile.Operations, o => Assert.True(o.Seconds > 0, $"{o.Kind}: {o.Seconds} s"));
    }

    /// <summary>
    /// <c>bench model --profile --sequences</c>'s measurement: decode steps of three sequences at once. Every operation
    /// takes the three rows in one launch, the KV cache appends and the attention too (each sequence's cache is a buffer
    /// of its own; the split kernel takes up to eight): a block is 8 launches, however many the sequences.
    /// </summary>
    [Fact]
    public void A_profiled_decode_of_sequences_together_launches_their_append_and_attention_once_per_block()
    {
        const int layers = 2, steps = 2, sequences = 3;
        string path = WriteTinyLlama2c(Path.Combine(fixture.Folder, "profiled-together.bin"),
            dim: 32, hidden: 40, layers: layers, heads: 4, kvHeads: 2, vocab: 37, seqLen: 16);
        using var device = IlgpuDevice.Create(IlgpuTestTarget.Target, profiling: true);
        using var stage = TransformerStage.Load(path, device);
        var profile = ModelBenchmark.ProfileDecodeTogether(stage, device, new ModelBenchmarkOptions(PromptTokens: 3, Sequences: sequences), steps);

        var counts = profile.Operations.ToDictionary(o => o.Kind, o => o.Count);
        Assert.Equal(steps * layers, counts["rmsnorm qkv gemv f32"]);
        Assert.Equal(steps * layers, counts["rope"]);
        Assert.Equal(steps * layers, counts["cache append"]);
        Assert.Equal(steps * layers, counts["split-key attention"]);
        Assert.Equal(steps * layers, counts["combine splits"]);
        Assert.Equal(steps * 2 * layers, counts["gemv add f32"]);
        Assert.Equal(steps * layers, counts["rmsnorm swiglu gemv f32"]);
        Assert.Equal(steps, counts["gemv f32"]); // the LM head, the three rows at once
        Assert.DoesNotContain("tiled attention", counts.Keys);
        Assert.Equal(steps * (8 * layers + 2), profile.Count);
    }

    [Fact]
    public void Profiling_needs_a_device_created_for_it()
    {
        var error = Assert.Throws<InvalidOperationException>(fixture.Ilgpu.StartProfile);
        Assert.Contains("without profiling", error.Message);
    }

    /// <summary>The rows block 1 computes in the prefill (A's positions 0, 2, 4 and B's 0, 2); the other blocks compute all.</summary>
    private static readonly int[] PrunedRows = [0, 2, 4, 6, 8];

    /// <summary>
    /// Logits after a prefill of sequences A (6 tokens) and B (4 tokens), then after one decode token each, with the
    /// matrices stored as <paramref name="storage"/> (null: as the file stores them).
    /// </summary>
    internal static float[][] RunBatchAndDecode(string path, IComputeDevice device, TensorDType? storage = null)
    {
        using var checkpoint = Checkpoint.Open(path);
        var config = checkpoint.Config;
        using var stage = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(config), device, storage), device);
        KvCache a = stage.NewCache(), b = stage.NewCache();
        int[] prefillTokens = [1, 5, 9, 13, 17, 21, 2, 30, 36, 11];
        TokenRow[] prefillRows = [.. TokenRow.Consecutive(a, 0, 6), .. TokenRow.Consecutive(b, 0, 4)];
        int[]?[] computeRows = [.. Enumerable.Range(0, config.Layers).Select(layer => layer == 1 ? PrunedRows : null)];
        var hidden = new float[prefillRows.Length * config.Dim];
        stage.Embed(prefillTokens, hidden);
        stage.Forward(prefillRows, hidden, computeRows);
        var prefillLogits = new float[prefillRows.Length * config.VocabSize];
        stage.Logits(hidden, prefillRows.Length, prefillLogits);

        var step = new float[2 * config.Dim];
        stage.Embed([7, 11], step);
        stage.Forward([new TokenRow(a, 6), new TokenRow(b, 4)], step);
        var decodeLogits = new float[2 * config.VocabSize];
        stage.Logits(step, 2, decodeLogits);
        return [prefillLogits, decodeLogits];
    }

    /// <summary>
    /// Writes a llama2.c checkpoint (seven int32, then float32 arrays; see shared/models/README.md) whose
    /// weights are all uniform in [-0.5, 0.5], with a separate classifier (negative vocab in the header).
    /// </summary>
    internal static string WriteTinyLlama2c(string path, int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen)
    {
        int headDim = dim / heads, kvDim = kvHeads * headDim;
        long perLayer = dim + (long)dim * dim + 2L * kvDim * dim + (long)dim * dim + dim + 3L * hidden * dim;
        long floats = (long)vocab * dim + layers * perLayer + dim + (long)seqLen * headDim + (long)vocab * dim;
        using var writer = new BinaryWriter(File.Create(path));
        foreach (int field in new[] { dim, hidden, layers, heads, kvHeads, -vocab, seqLen })
            writer.Write(field);
        foreach (float value in Numerics.Random(checked((int)floats), seed: 2024, scale: 0.5f))
            writer.Write(value);
        return path;
    }
}

/// <summary>The trained stories260K model (grouped-query attention, 5 layers) on ILGPU against the float64 golden logits.</summary>
public sealed class IlgpuGoldenTests
{
    [SharedModelsFact]
    public void Stories260K_logits_on_ilgpu_match_golden()
    {
        var golden = SharedModels.Golden.GetProperty("stories260K");
        using var device = IlgpuDevice.Create(IlgpuTestTarget.Target);
        using var model = Inference.GoldenTests.Load(golden.GetProperty("file").GetString()!, device);
        var ids = Inference.GoldenTests.Ints(golden.GetProperty("logits_ids"));
        var logits = Generator.AllLogits(model, ids);
        int vocab = model.Config.VocabSize, position = 0;
        foreach (var row in golden.GetProperty("logits").EnumerateArray())
        {
            var expected = row.EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
            // The golden values are float64; 1e-4 is the bound their authors give for a float32 engine.
            Numerics.AssertClose(expected, logits.AsSpan(position * vocab, vocab), 1e-4, $"position {position}");
            position++;
        }
        Assert.Equal(ids.Length, position);
    }
}
