using System.Text.Json.Nodes;
using FtpCluster.Compute.Models;
using Xunit;
using static FtpCluster.Compute.Tests.Models.ModelTestFiles;

namespace FtpCluster.Compute.Tests.Models;

public sealed class HuggingFaceConfigTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("llama", "LlamaForCausalLM", false)]
    [InlineData("mistral", "MistralForCausalLM", false)]
    [InlineData("qwen2", "Qwen2ForCausalLM", true)]
    public void Each_architecture_reads_back_with_grouped_query_attention(string modelType, string className, bool biases)
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { Architecture = modelType, Heads = 8, KvHeads = 2 });

        var config = HuggingFaceConfig.Read(ConfigPath(directory));

        Assert.Equal(className, config.Architecture);
        Assert.Equal((64, 96, 2, 8, 2, 8, 128), (config.Dim, config.HiddenDim, config.Layers, config.Heads, config.KvHeads, config.HeadDim, config.VocabSize));
        Assert.Equal(biases, config.AttentionBias);
        Assert.Equal(RopeLayout.Halves, config.RopeLayout);
        Assert.Equal(1e-5f, config.RmsNormEps);
        Assert.Equal(10000f, config.RopeTheta);
        Assert.Equal(2048, config.MaxSeqLen);
        Assert.Null(config.RopeScaling);
    }

    [Fact]
    public void Explicit_head_dim_overrides_hidden_size_over_heads()
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { HeadDim = 32 });

        using var checkpoint = HuggingFaceCheckpoint.Open(directory);

        Assert.Equal(32, checkpoint.Config.HeadDim);
        Assert.Equal(128, checkpoint.Config.QueryDim);
        Assert.Equal([128L, 64L], checkpoint.Find(TensorRole.Query, 1)!.Shape);
        Assert.Equal([64L, 128L], checkpoint.Find(TensorRole.AttentionOutput, 1)!.Shape);
    }

    [Fact]
    public void Absent_optional_keys_take_the_transformers_defaults()
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c =>
        {
            c.Remove("num_key_value_heads");
            c.Remove("head_dim");
            c.Remove("tie_word_embeddings");
            c.Remove("rope_theta");
            c.Remove("rope_scaling");
            c["num_attention_heads"] = 8;
        });

        var config = HuggingFaceConfig.Read(ConfigPath(directory));

        Assert.Equal(8, config.KvHeads);
        Assert.Equal(8, config.HeadDim);
        Assert.False(config.TiedEmbeddings);
        Assert.Equal(10000f, config.RopeTheta);
        Assert.Null(config.RopeScaling);
    }

    [Fact]
    public void Llama3_rope_scaling_reads_back()
    {
        var scaling = new Llama3RopeScaling(8f, 1f, 4f, 8192);
        string directory = WriteTiny(_temp, new SyntheticModelOptions { RopeTheta = 500000f, RopeScaling = scaling });

        var config = HuggingFaceConfig.Read(ConfigPath(directory));

        Assert.Equal(scaling, config.RopeScaling);
        Assert.Equal(500000f, config.RopeTheta);
    }

    [Fact]
    public void Rope_scaling_accepts_the_legacy_type_key_and_the_default_type()
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { RopeScaling = new Llama3RopeScaling(8f, 1f, 4f, 8192) });
        EditConfig(directory, c =>
        {
            var scaling = c["rope_scaling"]!.AsObject();
            scaling.Remove("rope_type");
            scaling["type"] = "llama3";
        });
        Assert.Equal(8f, HuggingFaceConfig.Read(ConfigPath(directory)).RopeScaling!.Factor);

        EditConfig(directory, c => c["rope_scaling"] = new JsonObject { ["rope_type"] = "default" });
        Assert.Null(HuggingFaceConfig.Read(ConfigPath(directory)).RopeScaling);
    }

    [Fact]
    public void Transformers_5_rope_parameters_carry_theta_and_scaling()
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c =>
        {
            c.Remove("rope_theta");
            c.Remove("rope_scaling");
            c["rope_parameters"] = new JsonObject
            {
                ["rope_type"] = "llama3", ["rope_theta"] = 500000.0, ["factor"] = 32.0,
                ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
            };
        });

        var config = HuggingFaceConfig.Read(ConfigPath(directory));

        Assert.Equal(500000f, config.RopeTheta);
        Assert.Equal(new Llama3RopeScaling(32f, 1f, 4f, 8192), config.RopeScaling);
    }

    [Fact]
    public void Unknown_rope_scaling_type_is_refused_by_name()
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c => c["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 });

        AssertFails(() => HuggingFaceConfig.Read(ConfigPath(directory)), ConfigPath(directory), "'yarn'", "llama3");
    }

    [Fact]
    public void Llama3_scaling_without_its_factor_names_the_missing_key()
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { RopeScaling = new Llama3RopeScaling(8f, 1f, 4f, 8192) });
        EditConfig(directory, c => c["rope_scaling"]!.AsObject().Remove("low_freq_factor"));

        AssertFails(() => HuggingFaceConfig.Read(ConfigPath(directory)), ConfigPath(directory), "'rope_scaling.low_freq_factor'");
    }

    [Fact]
    public void Unsupported_architecture_is_named_with_the_supported_ones()
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c => c["architectures"] = new JsonArray("GPT2LMHeadModel"));

        AssertFails(() => HuggingFaceCheckpoint.Open(directory),
            ConfigPath(directory), "GPT2LMHeadModel", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM");
    }

    [Fact]
    public void Config_that_does_not_parse_names_the_line_and_position()
    {
        string directory = WriteTiny(_temp);
        File.WriteAllText(ConfigPath(directory), "{\n  \"hidden_size\": 64,\n  \"num_hidden_layers\" 2\n}\n");

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), ConfigPath(directory), "line 3, position 23");
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    [InlineData("vocab_size")]
    [InlineData("max_position_embeddings")]
    [InlineData("rms_norm_eps")]
    [InlineData("architectures")]
    public void Missing_required_key_is_named(string key)
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c => c.Remove(key));

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), ConfigPath(directory), $"missing required key '{key}'");
    }

    [Fact]
    public void Key_of_the_wrong_type_is_named()
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c => c["num_hidden_layers"] = "two");

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), ConfigPath(directory), "'num_hidden_layers' must be an integer");
    }

    [Fact]
    public void Llama_with_attention_bias_is_refused_because_o_proj_would_lose_its_bias()
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c => c["attention_bias"] = true);

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), ConfigPath(directory), "attention_bias");
    }

    [Fact]
    public void Activation_other_than_silu_is_refused()
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c => c["hidden_act"] = "gelu");

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), ConfigPath(directory), "'gelu'");
    }

    [Fact]
    public void Mistral_sliding_window_caps_the_sequence_length()
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { Architecture = "mistral" });
        EditConfig(directory, c => c["sliding_window"] = 512);

        Assert.Equal(512, HuggingFaceConfig.Read(ConfigPath(directory)).MaxSeqLen);
    }

    [Fact]
    public void Inconsistent_numbers_fail_validation_naming_the_config()
    {
        string directory = WriteTiny(_temp);
        EditConfig(directory, c => c["num_key_value_heads"] = 3);

        AssertFails(() => HuggingFaceCheckpoint.Open(directory), ConfigPath(directory), "multiple of kv heads (3)");
    }
}
