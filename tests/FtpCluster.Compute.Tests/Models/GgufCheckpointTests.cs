using System.Text;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Inference;
using Xunit;
using static FtpCluster.Compute.Tests.Models.ModelTestFiles;

namespace FtpCluster.Compute.Tests.Models;

public sealed class GgufCheckpointTests : IDisposable
{
    private static readonly int[] Ids = [1, 17, 99, 3, 64, 64, 120, 5, 42, 7, 88, 31, 0, 127, 56, 9];
    private static readonly string[] ThreeTokens = ["a", "b", "c"];
    private static readonly int[] HeadCountPerLayer = [4, 4];
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("llama", false, TensorDType.F32)]
    [InlineData("llama", true, TensorDType.F16)]
    [InlineData("mistral", false, TensorDType.BF16)]
    [InlineData("qwen2", true, TensorDType.F16)]
    public void A_synthesized_gguf_holds_the_safetensors_weights_with_llama_q_and_k_rows_in_adjacent_pair_order(
        string architecture, bool tied, TensorDType dtype)
    {
        var options = new SyntheticModelOptions { Architecture = architecture, TiedEmbeddings = tied, DType = dtype, Seed = 3 };
        string directory = WriteTiny(_temp, options);
        string path = _temp.File("model.gguf");
        ModelSynthesizer.WriteGguf(options, path);

        using var hf = HuggingFaceCheckpoint.Open(directory);
        using var gguf = GgufCheckpoint.Open(path);

        bool permuted = architecture != "qwen2";
        var expectedConfig = hf.Config with
        {
            Architecture = architecture == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM",
            RopeLayout = permuted ? RopeLayout.AdjacentPairs : RopeLayout.Halves,
        };
        Assert.Equal(expectedConfig, gguf.Config);
        foreach (var (role, layer) in CheckpointTensors.All(hf.Config))
        {
            var stored = gguf.Find(role, layer)!;
            Assert.Equal(GgufCheckpoint.TensorName(role, layer), stored.Name);
            Assert.Equal(stored.Shape.Length == 1 ? TensorDType.F32 : dtype, stored.DType);
            float[] expected = hf.Find(role, layer)!.ToFloatArray();
            if (permuted && role is TensorRole.Query or TensorRole.Key)
                AssertAdjacentPairRows(expected, stored.ToFloatArray(), headDim: 16, cols: 64);
            else
                Assert.Equal(expected, stored.ToFloatArray());
        }
        if (tied)
            Assert.Same(gguf.Find(TensorRole.TokenEmbedding), gguf.Find(TensorRole.LmHead));
        Assert.Equal(tied, gguf.File.FindTensor("output.weight") is null);
    }

    public static TheoryData<string> LogitCases => ["llama-untied", "llama-tied-f16", "qwen2-biases", "mistral-head-dim", "llama3-scaling"];

    [Theory]
    [MemberData(nameof(LogitCases))]
    public void Logits_from_the_gguf_equal_those_from_the_same_weights_in_safetensors(string variant)
    {
        var options = SyntheticModelOptions.Preset("tiny") with { Layers = 3, Seed = 5 };
        options = variant switch
        {
            "llama-untied" => options,
            "llama-tied-f16" => options with { TiedEmbeddings = true, DType = TensorDType.F16 },
            "qwen2-biases" => options with { Architecture = "qwen2", RopeTheta = 1000000f, RmsNormEps = 1e-6f },
            // An original context of 64 puts pairs of the tiny head in all three bands of the scaling.
            "llama3-scaling" => options with { RopeTheta = 500000f, RopeScaling = new Llama3RopeScaling(8f, 1f, 4f, 64) },
            _ => options with { Architecture = "mistral", HeadDim = 24, Heads = 4, KvHeads = 1, RopeTheta = 100000f },
        };
        string directory = WriteTiny(_temp, options);
        string path = _temp.File("model.gguf");
        ModelSynthesizer.WriteGguf(options, path);

        var expected = Logits(directory);
        var actual = Logits(path);

        AssertSameLogits(expected, actual, 1e-5, variant);
    }

    [Fact]
    public void Q_and_k_rows_left_in_rotate_half_order_give_other_logits()
    {
        // The negative control of the test above: stored without llama.cpp's permutation, a llama GGUF
        // still opens, but its adjacent-pair RoPE rotates the wrong dimensions together.
        var options = SyntheticModelOptions.Preset("tiny") with { Seed = 5 };
        string directory = WriteTiny(_temp, options);
        string path = _temp.File("unpermuted.gguf");
        var config = options.ToConfig();
        GgufModelWriter.Write(path, config with { RopeLayout = RopeLayout.AdjacentPairs }, TensorDType.F32, "unpermuted", (role, layer) =>
            new SyntheticTensorValues(options.Seed, HuggingFaceCheckpoint.TensorName(role, layer), role, CheckpointTensors.ExpectedShape(config, role)).Fill);

        var expected = Logits(directory);
        var actual = Logits(path);

        double diff = expected.Zip(actual, (e, a) => (double)(e - a) * (e - a)).Sum();
        double norm = expected.Sum(e => (double)e * e);
        Assert.True(Math.Sqrt(diff / norm) > 1e-2, $"relative difference {Math.Sqrt(diff / norm):E2}: the RoPE layout made no difference");
    }

    [Fact]
    public void Checkpoint_Open_knows_a_gguf_by_its_magic_whatever_its_name()
    {
        string path = _temp.File("model.bin");
        ModelSynthesizer.WriteGguf(SyntheticModelOptions.Preset("tiny"), path);

        using var checkpoint = Checkpoint.Open(path);

        Assert.IsType<GgufCheckpoint>(checkpoint);
        Assert.Equal(64, checkpoint.Config.Dim);
    }

    [Fact]
    public void A_quantized_tensor_is_refused_at_open_naming_the_tensor_and_its_type()
    {
        string path = _temp.File("model.gguf");
        ModelSynthesizer.WriteGguf(SyntheticModelOptions.Preset("tiny"), path);
        // blk.0.attn_q.weight is [64, 64]: as Q8_1 (not in the kernels) it needs fewer bytes than its F32 data, so only the type is wrong.
        SetTensorType(path, "blk.0.attn_q.weight", (uint)GgmlType.Q8_1);

        AssertFails(() => GgufCheckpoint.Open(path), path, "tensor 'blk.0.attn_q.weight'", "is Q8_1; this build reads GGUF tensors stored as F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K");
    }

    [Theory]
    [InlineData("general.architecture")]
    [InlineData("llama.embedding_length")]
    [InlineData("llama.block_count")]
    [InlineData("llama.feed_forward_length")]
    [InlineData("llama.attention.head_count")]
    [InlineData("llama.context_length")]
    [InlineData("llama.attention.layer_norm_rms_epsilon")]
    public void A_missing_required_metadata_key_is_named(string key)
    {
        string path = WriteEdited(metadata => metadata.RemoveAll(kv => kv.Key == key));
        AssertFails(() => GgufCheckpoint.Open(path), path, $"missing required metadata key '{key}'");
    }

    [Fact]
    public void Optional_keys_fall_back_to_llama_cpp_defaults()
    {
        string[] optional = ["llama.attention.head_count_kv", "llama.attention.key_length", "llama.attention.value_length", "llama.rope.dimension_count", "llama.rope.freq_base"];
        string path = WriteEdited(metadata => metadata.RemoveAll(kv => optional.Contains(kv.Key)),
            tensors => tensors.ForEach(t => { if (t.Name.Contains("attn_k") || t.Name.Contains("attn_v")) t.Shape[0] = 64; }));

        using var checkpoint = GgufCheckpoint.Open(path);

        Assert.Equal((4, 4, 16, 10000f), (checkpoint.Config.Heads, checkpoint.Config.KvHeads, checkpoint.Config.HeadDim, checkpoint.Config.RopeTheta));
    }

    [Theory]
    [InlineData("architecture", "architecture 'gemma' (general.architecture) is not supported (supported: llama, qwen2)")]
    [InlineData("experts", "llama.expert_count is 8: mixture-of-experts models are not supported")]
    [InlineData("linear-scaling", "RoPE scaling 'linear' with llama.rope.scaling.factor 4 is not supported")]
    [InlineData("rope-freqs-shape", "tensor 'rope_freqs.weight': shape [5] is not [8]: one factor per pair of a head of 16 was expected")]
    [InlineData("rope-freqs-zero", "RoPE frequency factor 0 is 0: factors must be positive finite numbers")]
    [InlineData("partial-rotary", "metadata key 'llama.rope.dimension_count' is 8, but the head size is 16: partial rotary")]
    [InlineData("value-length", "metadata key 'llama.attention.value_length' is 32, but the head size is 16")]
    [InlineData("token-list", "tensor 'token_embd.weight': has 128 rows, but metadata key 'tokenizer.ggml.tokens' lists 3 tokens")]
    [InlineData("llama-bias", "tensor 'blk.1.attn_output.bias': LlamaForCausalLM has no such bias")]
    [InlineData("missing-tensor", "tensor 'blk.1.ffn_up.weight': tensor is missing")]
    [InlineData("misshapen-tensor", "tensor 'blk.0.ffn_down.weight': shape [64, 64] does not match the config, which needs [64, 96]")]
    [InlineData("head-count-type", "metadata key 'llama.attention.head_count' is array of int32, expected an integer")]
    public void Models_this_engine_cannot_run_correctly_are_refused_with_the_reason(string problem, string expected)
    {
        void Set(List<KeyValuePair<string, GgufValue>> metadata, string key, GgufValue value)
        {
            metadata.RemoveAll(kv => kv.Key == key);
            metadata.Add(new(key, value));
        }
        var path = problem switch
        {
            "architecture" => WriteEdited(m => Set(m, "general.architecture", new(GgufValueType.String, "gemma"))),
            "experts" => WriteEdited(m => Set(m, "llama.expert_count", new(GgufValueType.UInt32, 8u))),
            "linear-scaling" => WriteEdited(m =>
            {
                Set(m, "llama.rope.scaling.type", new(GgufValueType.String, "linear"));
                Set(m, "llama.rope.scaling.factor", new(GgufValueType.Float32, 4f));
            }),
            "rope-freqs-shape" => WriteEdited(tensors: t => t.Add(new("rope_freqs.weight", [5], TensorDType.F32))),
            "rope-freqs-zero" => WriteEdited(tensors: t => t.Add(new("rope_freqs.weight", [8], TensorDType.F32))),
            "partial-rotary" => WriteEdited(m => Set(m, "llama.rope.dimension_count", new(GgufValueType.UInt32, 8u))),
            "value-length" => WriteEdited(m => Set(m, "llama.attention.value_length", new(GgufValueType.UInt32, 32u))),
            "token-list" => WriteEdited(m => Set(m, GgufCheckpoint.TokensKey, new(GgufValueType.Array, ThreeTokens, GgufValueType.String))),
            "llama-bias" => WriteEdited(tensors: t => t.Add(new("blk.1.attn_output.bias", [64], TensorDType.F32))),
            "missing-tensor" => WriteEdited(tensors: t => t.RemoveAll(s => s.Name == "blk.1.ffn_up.weight")),
            "misshapen-tensor" => WriteEdited(tensors: t => t.ForEach(s => { if (s.Name == "blk.0.ffn_down.weight") s.Shape[1] = 64; })),
            _ => WriteEdited(m => Set(m, "llama.attention.head_count", new(GgufValueType.Array, HeadCountPerLayer, GgufValueType.Int32))),
        };
        AssertFails(() => GgufCheckpoint.Open(path), path, expected);
    }

    [Fact]
    public void Llama3_rope_scaling_is_written_as_llama_cpps_rope_freqs_and_read_back_as_the_same_factors()
    {
        var scaling = new Llama3RopeScaling(8f, 1f, 4f, 64);
        var options = SyntheticModelOptions.Preset("tiny") with { RopeTheta = 500000f, RopeScaling = scaling };
        string path = _temp.File("scaled.gguf");
        ModelSynthesizer.WriteGguf(options, path);

        using var gguf = GgufCheckpoint.Open(path);
        float[] factors = gguf.Config.RopeFrequencyFactors!;
        Assert.Null(gguf.Config.RopeScaling);
        Assert.Equal(scaling.FrequencyFactors(500000f, 16), factors);
        // The tiny head's 8 pairs: the fastest kept as it is, the slowest divided by the factor, one blended.
        Assert.Equal(1f, factors[0]);
        Assert.Equal(8f, factors[^1]);
        Assert.Contains(factors, f => f > 1f && f < 8f);
    }

    internal static float[] Logits(string modelPath)
    {
        using var device = new CpuDevice();
        using var model = TransformerStage.Load(modelPath, device);
        return Generator.AllLogits(model, Ids);
    }

    internal static void AssertSameLogits(float[] expected, float[] actual, double tolerance, string where)
    {
        Assert.Equal(expected.Length, actual.Length);
        int vocab = expected.Length / Ids.Length;
        for (int t = 0; t < Ids.Length; t++)
            SubsetForwardTests.AssertClose(expected.AsSpan(t * vocab, vocab).ToArray().Select(f => (double)f).ToArray(),
                actual.AsSpan(t * vocab, vocab), tolerance, $"{where}, position {t}");
    }

    /// <summary>Row 2i of each head is rotate-half row i, row 2i + 1 is row headDim/2 + i.</summary>
    private static void AssertAdjacentPairRows(float[] halves, float[] adjacent, int headDim, int cols)
    {
        Assert.Equal(halves.Length, adjacent.Length);
        for (int head = 0; head < halves.Length / (headDim * cols); head++)
        {
            for (int i = 0; i < headDim / 2; i++)
            {
                int at = head * headDim;
                Assert.Equal(halves.AsSpan((at + i) * cols, cols).ToArray(), adjacent.AsSpan((at + 2 * i) * cols, cols).ToArray());
                Assert.Equal(halves.AsSpan((at + headDim / 2 + i) * cols, cols).ToArray(), adjacent.AsSpan((at + 2 * i + 1) * cols, cols).ToArray());
            }
        }
    }

    /// <summary>
    /// The tiny llama model as GGUF (all F32, values 0.001 × element index), with its metadata and tensor
    /// list edited before writing; the data written follows the edited list.
    /// </summary>
    private string WriteEdited(Action<List<KeyValuePair<string, GgufValue>>>? metadata = null, Action<List<GgufTensorSpec>>? tensors = null)
    {
        var config = SyntheticModelOptions.Preset("tiny").ToConfig();
        var entries = GgufModelWriter.Metadata(config, TensorDType.F32, "llama", "edited");
        metadata?.Invoke(entries);
        var specs = CheckpointTensors.All(config)
            .Select(t => new GgufTensorSpec(GgufCheckpoint.TensorName(t.Role, t.Layer), CheckpointTensors.ExpectedShape(config, t.Role), TensorDType.F32))
            .ToList();
        tensors?.Invoke(specs);
        string path = _temp.File($"edited-{Guid.NewGuid():N}.gguf");
        using var writer = GgufWriter.Create(path, entries, specs);
        foreach (var spec in specs)
            writer.Write(Enumerable.Range(0, (int)spec.ElementCount).Select(i => i * 0.001f).ToArray());
        writer.Complete();
        return path;
    }

    /// <summary>Overwrites the ggml type of a tensor in place: its info is the name, the dimension count, the dimensions, then the type.</summary>
    private static void SetTensorType(string path, string tensor, uint type)
    {
        byte[] bytes = File.ReadAllBytes(path);
        byte[] name = Encoding.UTF8.GetBytes(tensor);
        int at = bytes.AsSpan().IndexOf(name);
        Assert.True(at > 0, $"tensor '{tensor}' not found in {path}");
        int dims = BitConverter.ToInt32(bytes, at + name.Length);
        BitConverter.TryWriteBytes(bytes.AsSpan(at + name.Length + 4 + 8 * dims), type);
        File.WriteAllBytes(path, bytes);
    }
}
