using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Inference;

/// <summary>
/// Hugging Face checkpoints through the whole forward pass: against the same weights written in
/// llama2.c layout (which proves the rotate-half RoPE and tensor naming), and against the float64
/// reference for what llama2.c cannot express (biases, explicit head_dim, Llama-3 RoPE scaling).
/// </summary>
public sealed class CheckpointEquivalenceTests : IDisposable
{
    private static readonly int[] Ids = [1, 17, 99, 3, 64, 64, 120, 5, 42, 7, 88, 31, 0, 127, 56, 9];
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-equivalence-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Hugging_Face_and_llama2c_layouts_give_the_same_logits(bool tied)
    {
        string hf = Path.Combine(_dir, "hf");
        string l2c = Path.Combine(_dir, "model.bin");
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Layers = 3, TiedEmbeddings = tied, Seed = 5 }, hf);
        using (var source = Checkpoint.Open(hf)) Llama2cWriter.Write(source, l2c);

        using var device = new CpuDevice();
        using var hfModel = TransformerStage.Load(hf, device);
        using var l2cModel = TransformerStage.Load(l2c, device);
        Assert.Equal(RopeLayout.Halves, hfModel.Config.RopeLayout);
        Assert.Equal(RopeLayout.AdjacentPairs, l2cModel.Config.RopeLayout);
        var expected = Generator.AllLogits(l2cModel, Ids);
        var actual = Generator.AllLogits(hfModel, Ids);
        int vocab = hfModel.Config.VocabSize;
        for (int t = 0; t < Ids.Length; t++)
            SubsetForwardTests.AssertClose(expected.AsSpan(t * vocab, vocab).ToArray().Select(f => (double)f).ToArray(),
                actual.AsSpan(t * vocab, vocab), 1e-5, $"position {t}");
    }

    public static TheoryData<string> ReferenceCases => ["qwen2-biases-untied", "mistral-head-dim", "llama3-scaling", "bf16", "f16"];

    [Theory]
    [MemberData(nameof(ReferenceCases))]
    public void Hugging_Face_variants_match_the_float64_reference(string variant)
    {
        var options = SyntheticModelOptions.Preset("tiny") with { Seed = 11, Layers = 2 };
        options = variant switch
        {
            "qwen2-biases-untied" => options with { Architecture = "qwen2", TiedEmbeddings = false, RopeTheta = 1000000f, RmsNormEps = 1e-6f },
            "mistral-head-dim" => options with { Architecture = "mistral", HeadDim = 24, Heads = 4, KvHeads = 1 },
            "llama3-scaling" => options with { RopeTheta = 500000f, RopeScaling = new Llama3RopeScaling(8f, 1f, 4f, 8) },
            "bf16" => options with { DType = TensorDType.BF16 },
            _ => options with { DType = TensorDType.F16 },
        };
        ModelSynthesizer.Write(options, _dir);
        using var device = new CpuDevice();
        using var checkpoint = Checkpoint.Open(_dir);
        using var model = new TransformerStage(ModelSlice.Load(checkpoint, SliceSpec.Whole(checkpoint.Config), device), device);
        var expected = new ReferenceModel(checkpoint).Logits(Ids);
        var actual = Generator.AllLogits(model, Ids);
        int vocab = model.Config.VocabSize;
        for (int t = 0; t < Ids.Length; t++)
            SubsetForwardTests.AssertClose(expected[t], actual.AsSpan(t * vocab, vocab), 1e-5, $"{variant}, position {t}");
    }

    [Theory]
    [InlineData("hf")]
    [InlineData("gguf")]
    public void Slices_run_one_after_another_equal_the_whole_model_bit_for_bit(string format)
    {
        var options = SyntheticModelOptions.Preset("tiny") with { Layers = 5, Seed = 3 };
        string path = format == "gguf" ? Path.Combine(_dir, "model.gguf") : _dir;
        if (format == "gguf") ModelSynthesizer.WriteGguf(options, path);
        else ModelSynthesizer.Write(options, path);
        using var device = new CpuDevice();
        using var whole = TransformerStage.Load(path, device);
        var expected = Generator.AllLogits(whole, Ids);

        SliceSpec[] specs = [new(0, 2, true, false), new(2, 3, false, false), new(3, 5, false, true)];
        var stages = specs.Select(s => TransformerStage.Load(path, device, s)).ToArray();
        var hidden = new float[Ids.Length * whole.Config.Dim];
        stages[0].Embed(Ids, hidden);
        foreach (var stage in stages)
        {
            var cache = stage.NewCache();
            stage.Forward(Enumerable.Range(0, Ids.Length).Select(p => new TokenRow(cache, p)).ToArray(), hidden);
        }
        var logits = new float[expected.Length];
        stages[^1].Logits(hidden, Ids.Length, logits);
        foreach (var stage in stages) stage.Dispose();
        Assert.Equal(expected, logits);
    }

    [Fact]
    public void A_slice_holds_weights_in_proportion_to_its_layers_not_the_model()
    {
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Layers = 8, VocabSize = 4096 }, _dir);
        using var device = new CpuDevice();
        using var checkpoint = Checkpoint.Open(_dir);
        long Bytes(SliceSpec spec)
        {
            using var slice = ModelSlice.Load(checkpoint, spec, device);
            return slice.ResidentBytes;
        }
        long one = Bytes(new SliceSpec(3, 4, false, false));
        long two = Bytes(new SliceSpec(3, 5, false, false));
        long four = Bytes(new SliceSpec(2, 6, false, false));
        long whole = Bytes(SliceSpec.Whole(checkpoint.Config));
        Assert.Equal(2 * one, two);
        Assert.Equal(4 * one, four);
        // A layer of this model is far smaller than its embedding and head: a middle slice holds neither.
        Assert.True(8 * one < whole / 2, $"8 layers ({8 * one} bytes) against the whole model ({whole} bytes)");
        Assert.Equal(8 * one, whole - Bytes(new SliceSpec(0, 0, true, true)));
    }
}
