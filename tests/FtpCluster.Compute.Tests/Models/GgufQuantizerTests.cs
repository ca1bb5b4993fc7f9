using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tokenizers;
using Xunit;

namespace FtpCluster.Compute.Tests.Models;

/// <summary>Checkpoints written as Q8_0 GGUF by <see cref="GgufQuantizer"/>, read back by <see cref="GgufCheckpoint"/>.</summary>
public sealed class GgufQuantizerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> Sources => new() { "hf-llama", "gguf-qwen2" };

    [Theory]
    [MemberData(nameof(Sources))]
    public void Each_matrix_holds_the_q8_0_blocks_of_the_source_and_vectors_stay_f32(string kind)
    {
        string source = WriteSource(kind);
        string path = _temp.File("quantized.gguf");
        using var original = Checkpoint.Open(source);
        GgufQuantizer.Quantize(original, path, GgufQuantization.Parse("q8_0"));

        using var quantized = GgufCheckpoint.Open(path);
        Assert.Equal(original.Config with { RopeLayout = quantized.Config.RopeLayout }, quantized.Config);
        Assert.Equal(7L, quantized.File.Metadata.Integer("general.file_type"));
        bool permuted = original.Config.RopeLayout != quantized.Config.RopeLayout;
        foreach (var (role, layer) in CheckpointTensors.All(original.Config))
        {
            var stored = quantized.Find(role, layer)!;
            var values = original.Find(role, layer)!.ToFloatArray();
            if (permuted && role is TensorRole.Query or TensorRole.Key)
                values = AdjacentPairRows(values, original.Config.HeadDim, original.Config.Dim);
            if (stored.Shape.Length == 1)
            {
                Assert.Equal(TensorDType.F32, stored.DType);
                Assert.Equal(values, stored.ToFloatArray());
                continue;
            }
            Assert.Equal(TensorDType.Q8_0, stored.DType);
            var blocks = new byte[TensorDType.Q8_0.ByteCount(values.Length)];
            Q8Block.Quantize(values, blocks);
            var expected = new float[values.Length];
            Q8Block.Dequantize(blocks, expected);
            Assert.True(expected.AsSpan().SequenceEqual(stored.ToFloatArray()), $"{stored.Name}: dequantized values differ from Q8Block's");
        }
    }

    /// <summary>
    /// Bit for bit: the file's matrices are the blocks that quantizing at load makes (same Q8Block rounding of the
    /// same rows), and both run the same kernels on them. The one difference would be the token embedding, which
    /// the file holds as Q8_0 while quantizing at load keeps it as stored; the source's embedding is therefore
    /// written already rounded through Q8_0, which quantizing again leaves unchanged.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Logits_on_the_file_equal_those_of_the_source_quantized_at_load(bool tied)
    {
        var options = SyntheticModelOptions.Preset("tiny") with { Seed = 4, Dim = 128, HiddenDim = 256, Heads = 4, KvHeads = 2, TiedEmbeddings = tied };
        string synthetic = _temp.File("synthetic.gguf");
        var config = ModelSynthesizer.WriteGguf(options, synthetic);
        string source = _temp.File("source.gguf");
        using (var raw = GgufCheckpoint.Open(synthetic))
        {
            GgufModelWriter.Write(source, config, TensorDType.F32, "q8-exact embedding", (role, layer) =>
            {
                var values = raw.Find(role, layer)!.ToFloatArray();
                if (role == TensorRole.TokenEmbedding)
                    values = RoundedThroughQ8(values);
                long position = 0;
                return chunk =>
                {
                    values.AsSpan((int)position, chunk.Length).CopyTo(chunk);
                    position += chunk.Length;
                };
            });
        }
        string path = _temp.File("quantized.gguf");
        using (var checkpoint = Checkpoint.Open(source))
            GgufQuantizer.Quantize(checkpoint, path, GgufQuantization.Parse("q8_0"));

        using var device = new CpuDevice(2);
        float[] atLoad, fromFile;
        using (var model = TransformerStage.Load(source, device, storage: TensorDType.Q8_0))
            atLoad = Generator.AllLogits(model, Ids);
        using (var model = TransformerStage.Load(path, device))
            fromFile = Generator.AllLogits(model, Ids);

        Assert.Equal(atLoad, fromFile);
    }

    [Fact]
    public void A_matrix_whose_rows_are_not_whole_blocks_stays_f16_and_the_file_runs()
    {
        string source = _temp.File("hf");
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Seed = 5, Dim = 64, Heads = 2, KvHeads = 2, HiddenDim = 100 }, source);
        string path = _temp.File("quantized.gguf");
        GgufQuantizeResult result;
        using (var original = Checkpoint.Open(source))
        {
            result = GgufQuantizer.Quantize(original, path, GgufQuantization.Parse("q8_0"));
            using var quantized = GgufCheckpoint.Open(path);
            for (int layer = 0; layer < original.Config.Layers; layer++)
            {
                // down is [dim, hidden]: rows of 100; gate and up are [hidden, dim]: rows of 64.
                var down = quantized.Find(TensorRole.Down, layer)!;
                Assert.Equal(TensorDType.F16, down.DType);
                var values = original.Find(TensorRole.Down, layer)!.ToFloatArray();
                Assert.Equal(values.Select(v => (float)(Half)v), down.ToFloatArray());
                Assert.Equal(TensorDType.Q8_0, quantized.Find(TensorRole.Up, layer)!.DType);
            }
        }
        Assert.Equal(result.Config.Layers, result.TensorsByType[TensorDType.F16]);

        using var device = new CpuDevice(2);
        using var model = TransformerStage.Load(path, device);
        Assert.All(Generator.AllLogits(model, Ids), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Quantizing_a_q8_0_file_again_gives_the_same_blocks()
    {
        string source = _temp.File("source.gguf");
        ModelSynthesizer.WriteGguf(SyntheticModelOptions.Preset("tiny") with { Seed = 6, Dim = 64, HiddenDim = 128, Heads = 2, KvHeads = 2 }, source);
        string once = _temp.File("once.gguf"), twice = _temp.File("twice.gguf");
        using (var checkpoint = Checkpoint.Open(source))
            GgufQuantizer.Quantize(checkpoint, once, GgufQuantization.Parse("q8_0"));
        using (var checkpoint = Checkpoint.Open(once))
            GgufQuantizer.Quantize(checkpoint, twice, GgufQuantization.Parse("q8_0"));

        using var first = GgufCheckpoint.Open(once);
        using var second = GgufCheckpoint.Open(twice);
        foreach (var (role, layer) in CheckpointTensors.All(first.Config))
            Assert.True(first.Find(role, layer)!.Bytes.SequenceEqual(second.Find(role, layer)!.Bytes), $"{role} {layer}");
    }

    [Fact]
    public void A_sentencepiece_tokenizer_and_chat_template_go_into_the_file()
    {
        string source = _temp.File("hf");
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Seed = 7, Dim = 32, Heads = 2, KvHeads = 2, HiddenDim = 64, VocabSize = 32000 }, source);
        string tokenizerModel = SharedModels.PathTo("llama2-tokenizer", "tokenizer.model");
        File.Copy(tokenizerModel, Path.Combine(source, "tokenizer.model"));
        const string template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}";
        File.WriteAllText(Path.Combine(source, "tokenizer_config.json"), System.Text.Json.JsonSerializer.Serialize(new { chat_template = template }));
        string path = _temp.File("quantized.gguf");
        using (var checkpoint = Checkpoint.Open(source))
            Assert.Null(GgufQuantizer.Quantize(checkpoint, path, GgufQuantization.Parse("q8_0")).NoVocabularyReason);

        using var file = GgufFile.Open(path);
        var written = GgufVocabulary.Read(file.Metadata)!;
        var expected = GgufVocabulary.FromSentencePieceModel(tokenizerModel);
        Assert.Equal(expected.Tokens, written.Tokens);
        Assert.Equal(expected.Scores, written.Scores);
        Assert.Equal(expected.BosId, written.BosId);
        Assert.Equal(template, written.ChatTemplate);
    }

    [Fact]
    public void Sources_without_a_convertible_vocabulary_write_no_vocab_and_say_why()
    {
        string hf = _temp.File("hf");
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Seed = 8, Dim = 32, Heads = 2, KvHeads = 2, HiddenDim = 64 }, hf);
        File.WriteAllText(Path.Combine(hf, "tokenizer.json"), "{}");
        string llama2c = SharedModels.PathTo("stories260K", "stories260K.bin");

        foreach (var (source, reason) in new[] { (hf, "only SentencePiece tokenizer.model vocabularies are converted"), (llama2c, "llama2.c checkpoint") })
        {
            string path = _temp.File(Path.GetFileName(source) + ".gguf");
            using (var checkpoint = Checkpoint.Open(source))
                Assert.Contains(reason, GgufQuantizer.Quantize(checkpoint, path, GgufQuantization.Parse("q8_0")).NoVocabularyReason);
            using var file = GgufFile.Open(path);
            Assert.Equal(GgufVocabulary.NoVocabulary, file.Metadata.String(GgufVocabulary.ModelKey));
        }
    }

    [Theory]
    [InlineData("q3_k", "unknown quantization type")]
    [InlineData("f16", "unknown quantization type")]
    public void Types_not_built_are_refused_naming_the_built_ones(string name, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => GgufQuantization.Parse(name));
        Assert.Contains(expected, error.Message);
        Assert.Contains("this build writes q8_0, q4_0, q4_k, q6_k, q4_k_s, q4_k_m, q5_k_m", error.Message);
    }

    internal static readonly int[] Ids = [1, 17, 99, 3, 64, 64, 120, 5, 42, 7, 88, 31, 0, 127, 56, 9];

    private string WriteSource(string kind)
    {
        var options = SyntheticModelOptions.Preset("tiny") with { Seed = 3, Dim = 64, HiddenDim = 96, Heads = 4, KvHeads = 2 };
        switch (kind)
        {
            case "hf-llama":
                string folder = _temp.File("hf");
                ModelSynthesizer.Write(options, folder);
                return folder;
            default:
                string file = _temp.File("qwen2.gguf");
                ModelSynthesizer.WriteGguf(options with { Architecture = "qwen2", TiedEmbeddings = true }, file);
                return file;
        }
    }

    private static float[] RoundedThroughQ8(float[] values)
    {
        var blocks = new byte[TensorDType.Q8_0.ByteCount(values.Length)];
        Q8Block.Quantize(values, blocks);
        var rounded = new float[values.Length];
        Q8Block.Dequantize(blocks, rounded);
        return rounded;
    }

    /// <summary>Rotate-half rows reordered as llama.cpp's converter does: row 2i of a head is row i, row 2i + 1 is row headDim/2 + i.</summary>
    private static float[] AdjacentPairRows(float[] halves, int headDim, int cols)
    {
        var adjacent = new float[halves.Length];
        for (int head = 0; head < halves.Length / (headDim * cols); head++)
        {
            for (int row = 0; row < headDim; row++)
            {
                int sourceRow = row % 2 == 0 ? row / 2 : headDim / 2 + row / 2;
                halves.AsSpan((head * headDim + sourceRow) * cols, cols).CopyTo(adjacent.AsSpan((head * headDim + row) * cols, cols));
            }
        }
        return adjacent;
    }
}
