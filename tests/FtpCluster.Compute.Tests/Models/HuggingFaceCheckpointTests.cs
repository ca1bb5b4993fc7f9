using System.Text.Json.Nodes;
using FtpCluster.Compute.Models;
using Xunit;
using static FtpCluster.Compute.Tests.Models.ModelTestFiles;

namespace FtpCluster.Compute.Tests.Models;

public sealed class HuggingFaceCheckpointTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void Every_tensor_reads_back_what_the_synthesizer_generated(TensorDType dtype)
    {
        var options = new SyntheticModelOptions { Architecture = "qwen2", DType = dtype, Seed = 7 };
        string directory = WriteTiny(_temp, options);

        using var checkpoint = HuggingFaceCheckpoint.Open(directory);

        foreach (var (role, layer) in CheckpointTensors.All(checkpoint.Config))
        {
            var tensor = checkpoint.Find(role, layer)!;
            Assert.Equal(dtype, tensor.DType);
            Assert.Equal(GeneratedValues(options, role, layer, checkpoint.Config).Select(v => StoredAs(dtype, v)), tensor.ToFloatArray());
        }
    }

    [Fact]
    public void Values_of_known_bits_decode_exactly()
    {
        string path = _temp.File("known.safetensors");
        byte[] data =
        [
            0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x20, 0xC1, // F32 1.5, -10
            0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38,             // F16 1, -2, 0.5
            0xC0, 0x3F, 0x80, 0xBE,                         // BF16 1.5, -0.25
        ];
        WriteSafetensors(path, """
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F16", "shape": [3, 1], "data_offsets": [8, 14]},
             "c": {"dtype": "BF16", "shape": [2], "data_offsets": [14, 18]},
             "__metadata__": {"format": "pt"}}
            """, data);

        using var file = SafetensorsFile.Open(path);

        Assert.Equal([1.5f, -10f], file.Tensors["a"].ToFloatArray());
        Assert.Equal([1f, -2f, 0.5f], file.Tensors["b"].ToFloatArray());
        Assert.Equal([3L, 1L], file.Tensors["b"].Shape);
        Assert.Equal([1.5f, -0.25f], file.Tensors["c"].ToFloatArray());
        Assert.Equal("pt", file.Metadata["format"]);
    }

    [Fact]
    public void Sharded_checkpoint_reads_the_same_weights_as_a_single_file()
    {
        var options = new SyntheticModelOptions { DType = TensorDType.F16 };
        string single = WriteTiny(_temp, options, "single");
        string sharded = WriteTiny(_temp, options with { MaxShardBytes = 20_000 }, "sharded");

        using var one = HuggingFaceCheckpoint.Open(single);
        using var many = HuggingFaceCheckpoint.Open(sharded);

        Assert.False(File.Exists(WeightsPath(sharded)));
        var shardFiles = many.Tensors.Values.Select(t => t.FilePath).Distinct().ToList();
        Assert.True(shardFiles.Count > 2, $"expected several shards, got {shardFiles.Count}");
        Assert.All(shardFiles, f => Assert.Matches(@"model-\d{5}-of-\d{5}\.safetensors$", f));
        Assert.Equal(one.Config, many.Config);
        foreach (var (role, layer) in CheckpointTensors.All(one.Config))
            Assert.Equal(one.Find(role, layer)!.ToFloatArray(), many.Find(role, layer)!.ToFloatArray());
    }

    [Fact]
    public void Tied_embeddings_serve_as_the_lm_head()
    {
        string tied = WriteTiny(_temp, new SyntheticModelOptions { TiedEmbeddings = true }, "tied");
        string untied = WriteTiny(_temp, new SyntheticModelOptions { TiedEmbeddings = false }, "untied");

        using var t = HuggingFaceCheckpoint.Open(tied);
        using var u = HuggingFaceCheckpoint.Open(untied);

        Assert.True(t.Config.TiedEmbeddings);
        Assert.DoesNotContain("lm_head.weight", t.Tensors.Keys);
        Assert.Same(t.Find(TensorRole.TokenEmbedding), t.Find(TensorRole.LmHead));
        Assert.False(u.Config.TiedEmbeddings);
        Assert.Equal("lm_head.weight", u.Find(TensorRole.LmHead)!.Name);
        Assert.NotEqual(u.Find(TensorRole.TokenEmbedding)!.ToFloatArray(), u.Find(TensorRole.LmHead)!.ToFloatArray());
    }

    [Fact]
    public void Qwen2_biases_are_found_and_llama_has_none()
    {
        string qwen = WriteTiny(_temp, new SyntheticModelOptions { Architecture = "qwen2" }, "qwen");
        string llama = WriteTiny(_temp, new SyntheticModelOptions { Architecture = "llama" }, "llama");

        using var q = HuggingFaceCheckpoint.Open(qwen);
        using var l = HuggingFaceCheckpoint.Open(llama);

        Assert.Equal("model.layers.1.self_attn.q_proj.bias", q.Find(TensorRole.QueryBias, 1)!.Name);
        Assert.Equal([32L], q.Find(TensorRole.KeyBias, 0)!.Shape);
        Assert.Equal([32L], q.Find(TensorRole.ValueBias, 1)!.Shape);
        Assert.Null(l.Find(TensorRole.QueryBias, 0));
        Assert.Null(l.Find(TensorRole.Query, 2));
    }

    [Fact]
    public void Checkpoint_Open_dispatches_a_directory_to_the_Hugging_Face_reader()
    {
        string directory = WriteTiny(_temp);

        using var checkpoint = Checkpoint.Open(directory);

        Assert.IsType<HuggingFaceCheckpoint>(checkpoint);
        Assert.Equal("LlamaForCausalLM", checkpoint.Config.Architecture);
    }

    [Fact]
    public void Missing_directory_is_named() =>
        AssertFails(() => HuggingFaceCheckpoint.Open(_temp.File("absent")), _temp.File("absent"), "not found");

    [Fact]
    public void Missing_config_json_is_named()
    {
        string directory = WriteTiny(_temp);
        File.Delete(ConfigPath(directory));

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), ConfigPath(directory), "not found");
    }

    [Fact]
    public void Missing_weights_file_names_the_directory_and_both_layouts()
    {
        string directory = WriteTiny(_temp);
        File.Delete(WeightsPath(directory));

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), directory, "model.safetensors", "model.safetensors.index.json");
    }

    [Fact]
    public void Missing_shard_is_named()
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { MaxShardBytes = 40_000 });
        string shard = Directory.GetFiles(directory, "model-00002-of-*.safetensors").Single();
        File.Delete(shard);

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), shard, "shard file not found");
    }

    [Fact]
    public void Shard_without_a_tensor_its_index_promises_names_both()
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { MaxShardBytes = 40_000 });
        string shard = Directory.GetFiles(directory, "model-00001-of-*.safetensors").Single();
        EditSafetensorsHeader(shard, h => h.Remove("model.embed_tokens.weight"));

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), shard, "model.embed_tokens.weight", "index");
    }

    [Fact]
    public void Header_length_beyond_the_file_is_reported()
    {
        string directory = WriteTiny(_temp);
        byte[] bytes = File.ReadAllBytes(WeightsPath(directory));
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)bytes.Length);
        File.WriteAllBytes(WeightsPath(directory), bytes);

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), WeightsPath(directory), "beyond the end of the file");
    }

    [Fact]
    public void File_shorter_than_the_length_prefix_is_truncated()
    {
        string directory = WriteTiny(_temp);
        File.WriteAllBytes(WeightsPath(directory), [1, 2, 3]);

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), WeightsPath(directory), "truncated");
    }

    [Fact]
    public void Header_that_does_not_parse_names_the_position()
    {
        string path = _temp.File("bad.safetensors");
        WriteSafetensors(path, """{"a": {"dtype": "F32",, "shape": [1]}}""", new byte[4]);

        AssertFails(() => SafetensorsFile.Open(path), path, "header is not valid JSON at line 1, position 23");
    }

    [Fact]
    public void Unsupported_dtype_names_the_file_and_tensor()
    {
        string directory = WriteTiny(_temp);
        EditSafetensorsHeader(WeightsPath(directory), h => h["model.norm.weight"]!["dtype"] = "I64");

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), WeightsPath(directory), "'model.norm.weight'", "'I64'", "F32, F16, BF16");
    }

    [Fact]
    public void Data_offsets_inconsistent_with_the_shape_name_the_tensor()
    {
        string directory = WriteTiny(_temp);
        EditSafetensorsHeader(WeightsPath(directory), h => h["model.norm.weight"]!["shape"] = new JsonArray(65));

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), WeightsPath(directory), "'model.norm.weight'", "data_offsets", "needs 260");
    }

    [Fact]
    public void Tensor_entry_without_data_offsets_names_the_key_and_tensor()
    {
        string directory = WriteTiny(_temp);
        EditSafetensorsHeader(WeightsPath(directory), h => h["model.norm.weight"]!.AsObject().Remove("data_offsets"));

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), WeightsPath(directory), "'model.norm.weight'", "'data_offsets'");
    }

    [Fact]
    public void Truncated_data_names_the_file_and_the_tensor_cut_off()
    {
        string directory = WriteTiny(_temp);
        Truncate(WeightsPath(directory), 4);

        // The synthesizer writes lm_head last, so the cut falls inside it.
        AssertFails(() => HuggingFaceCheckpoint.Open(directory), WeightsPath(directory), "'lm_head.weight'", "truncated");
    }

    [Fact]
    public void Tensor_shape_not_matching_the_config_names_the_tensor_and_both_shapes()
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c => c["intermediate_size"] = 128);

        AssertFails(() => HuggingFaceCheckpoint.Open(directory),
            WeightsPath(directory), "'model.layers.0.mlp.gate_proj.weight'", "[96, 64]", "[128, 64]");
    }

    [Fact]
    public void Missing_tensor_names_the_file_and_the_tensor()
    {
        string directory = WriteTiny(_temp);
        EditSafetensorsHeader(WeightsPath(directory), h => h.Remove("model.layers.1.mlp.down_proj.weight"));

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), WeightsPath(directory), "'model.layers.1.mlp.down_proj.weight'", "missing");
    }

    [Fact]
    public void Untied_config_without_lm_head_is_missing_a_tensor()
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { TiedEmbeddings = true });
        EditConfig(directory, c => c["tie_word_embeddings"] = false);

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), WeightsPath(directory), "'lm_head.weight'", "missing");
    }

    [Fact]
    public void Qwen2_without_its_biases_is_missing_a_tensor()
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { Architecture = "llama" });
        EditConfig(directory, c => c["architectures"] = new JsonArray("Qwen2ForCausalLM"));

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), WeightsPath(directory), "'model.layers.0.self_attn.q_proj.bias'", "missing");
    }

    private static float[] GeneratedValues(SyntheticModelOptions options, TensorRole role, int layer, ModelConfig config)
    {
        var shape = CheckpointTensors.ExpectedShape(config, role);
        var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
        new SyntheticTensorValues(options.Seed, HuggingFaceCheckpoint.TensorName(role, layer), role, shape).Fill(values);
        return values;
    }

    /// <summary>What a float32 becomes once stored: an independent oracle for the writer's rounding.</summary>
    private static float StoredAs(TensorDType dtype, float value) => dtype switch
    {
        TensorDType.F32 => value,
        TensorDType.F16 => (float)(Half)value,
        _ => BitConverter.UInt32BitsToSingle(RoundToBFloat16Bits(BitConverter.SingleToUInt32Bits(value))),
    };

    /// <summary>Round to nearest, ties to even, at bit 16 (the values here are finite).</summary>
    private static uint RoundToBFloat16Bits(uint bits)
    {
        uint dropped = bits & 0xFFFF, kept = bits & 0xFFFF0000;
        bool roundUp = dropped > 0x8000 || (dropped == 0x8000 && (kept & 0x10000) != 0);
        return roundUp ? kept + 0x10000 : kept;
    }
}
