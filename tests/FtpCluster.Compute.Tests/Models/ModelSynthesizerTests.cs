using FtpCluster.Compute.Models;
using Xunit;
using static FtpCluster.Compute.Tests.Models.ModelTestFiles;

namespace FtpCluster.Compute.Tests.Models;

public sealed class ModelSynthesizerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Same_seed_writes_identical_files_and_another_seed_does_not()
    {
        string first = WriteTiny(_temp, new SyntheticModelOptions { Seed = 3 }, "first");
        string again = WriteTiny(_temp, new SyntheticModelOptions { Seed = 3 }, "again");
        string other = WriteTiny(_temp, new SyntheticModelOptions { Seed = 4 }, "other");

        Assert.Equal(File.ReadAllBytes(WeightsPath(first)), File.ReadAllBytes(WeightsPath(again)));
        Assert.Equal(File.ReadAllBytes(ConfigPath(first)), File.ReadAllBytes(ConfigPath(again)));
        Assert.NotEqual(File.ReadAllBytes(WeightsPath(first)), File.ReadAllBytes(WeightsPath(other)));
    }

    [Theory]
    [InlineData(TensorRole.TokenEmbedding, 0.0, 1.0)]
    [InlineData(TensorRole.Gate, 0.0, 0.0625)] // 1/sqrt(fan_in 256)
    [InlineData(TensorRole.Down, 0.0, 0.03125)] // 1/sqrt(fan_in 1024)
    [InlineData(TensorRole.FfnNorm, 1.0, 0.1)]
    [InlineData(TensorRole.KeyBias, 0.0, 0.1)]
    public void Values_have_the_mean_and_spread_of_their_role(TensorRole role, double mean, double std)
    {
        var values = new float[200_000];
        new SyntheticTensorValues(11, "t", role, role == TensorRole.Down ? [256, 1024] : [1024, 256]).Fill(values);

        double actualMean = values.Average(v => (double)v);
        double actualStd = Math.Sqrt(values.Average(v => (v - actualMean) * (v - actualMean)));

        double fiveStandardErrors = 5 * std / Math.Sqrt(values.Length);
        Assert.InRange(actualMean, mean - fiveStandardErrors, mean + fiveStandardErrors);
        Assert.InRange(actualStd / std, 0.99, 1.01);
    }

    [Fact]
    public void Values_do_not_depend_on_chunking()
    {
        var whole = new float[1000];
        new SyntheticTensorValues(5, "w", TensorRole.Up, [10, 100]).Fill(whole);
        var pieces = new float[1000];
        var stream = new SyntheticTensorValues(5, "w", TensorRole.Up, [10, 100]);
        stream.Fill(pieces.AsSpan(0, 1));
        stream.Fill(pieces.AsSpan(1, 332));
        stream.Fill(pieces.AsSpan(333));

        Assert.Equal(whole, pieces);
    }

    [Fact]
    public void BFloat16_rounds_to_nearest_even()
    {
        Assert.Equal(0x3F80, WeightEncoding.ToBFloat16(1f + MathF.Pow(2, -8)));  // halfway, 1.0 is even
        Assert.Equal(0x3F82, WeightEncoding.ToBFloat16(1f + 3 * MathF.Pow(2, -8))); // halfway, up to even
        Assert.Equal(0x3F81, WeightEncoding.ToBFloat16(1f + MathF.Pow(2, -8) + MathF.Pow(2, -20))); // above halfway
        Assert.Equal(0xC000, WeightEncoding.ToBFloat16(-2f));
        Assert.True(float.IsNaN(BitConverter.UInt32BitsToSingle((uint)WeightEncoding.ToBFloat16(float.NaN) << 16)));
    }

    [Fact]
    public void Presets_have_the_shapes_of_the_models_they_stand_for()
    {
        var tiny = SyntheticModelOptions.Preset("tiny").ToConfig();
        var smol = SyntheticModelOptions.Preset("smollm2-135m").ToConfig();
        var tinyllama = SyntheticModelOptions.Preset("tinyllama-1.1b").ToConfig();

        Assert.Equal((2, 64, 4, 2, 96, 128, false), (tiny.Layers, tiny.Dim, tiny.Heads, tiny.KvHeads, tiny.HiddenDim, tiny.VocabSize, tiny.TiedEmbeddings));
        Assert.Equal(134_515_008, smol.ParameterCount); // SmolLM2-135M's published count
        Assert.True(smol.TiedEmbeddings);
        Assert.Equal(100000f, smol.RopeTheta);
        Assert.Equal(64, smol.HeadDim);
        Assert.Equal(1_100_048_384, tinyllama.ParameterCount); // TinyLlama-1.1B's published count
        Assert.False(tinyllama.TiedEmbeddings);
    }

    [Fact]
    public void Unknown_preset_lists_the_known_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => SyntheticModelOptions.Preset("gpt-5"));

        Assert.Contains("'gpt-5'", error.Message, StringComparison.Ordinal);
        Assert.Contains("tiny, smollm2-135m, tinyllama-1.1b", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_that_cannot_make_a_model_are_refused_before_writing()
    {
        var badArchitecture = Assert.Throws<ArgumentException>(() => ModelSynthesizer.Write(new SyntheticModelOptions { Architecture = "gpt2" }, _temp.File("a")));
        Assert.Contains("llama, mistral, qwen2", badArchitecture.Message, StringComparison.Ordinal);

        var badHeads = Assert.Throws<ArgumentException>(() => ModelSynthesizer.Write(new SyntheticModelOptions { KvHeads = 3 }, _temp.File("b")));
        Assert.Contains("multiple of kv heads", badHeads.Message, StringComparison.Ordinal);

        Assert.False(Directory.Exists(_temp.File("a")));
        Assert.False(Directory.Exists(_temp.File("b")));
    }

    [Fact]
    public void Rewriting_unsharded_over_sharded_leaves_no_stale_index()
    {
        string directory = _temp.File("model");
        ModelSynthesizer.Write(new SyntheticModelOptions { MaxShardBytes = 50_000, Seed = 1 }, directory);
        ModelSynthesizer.Write(new SyntheticModelOptions { Seed = 2 }, directory);

        Assert.False(File.Exists(Path.Combine(directory, HuggingFaceCheckpoint.IndexFileName)));
        using var checkpoint = HuggingFaceCheckpoint.Open(directory);
        Assert.Equal(WeightsPath(directory), checkpoint.Find(TensorRole.Query, 0)!.FilePath);
    }
}
