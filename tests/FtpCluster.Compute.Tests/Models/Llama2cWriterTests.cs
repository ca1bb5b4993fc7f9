using FtpCluster.Compute.Models;
using Xunit;
using static FtpCluster.Compute.Tests.Models.ModelTestFiles;

namespace FtpCluster.Compute.Tests.Models;

public sealed class Llama2cWriterTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("llama", false, TensorDType.F32)]
    [InlineData("mistral", true, TensorDType.BF16)]
    public void Written_file_holds_the_same_weights_with_q_and_k_rows_in_adjacent_pair_order(string architecture, bool tied, TensorDType dtype)
    {
        string directory = WriteTiny(_temp, new SyntheticModelOptions { Architecture = architecture, TiedEmbeddings = tied, DType = dtype });
        string path = _temp.File("model.bin");
        using var hf = HuggingFaceCheckpoint.Open(directory);

        Llama2cWriter.Write(hf, path);
        using var l2c = Llama2cCheckpoint.Open(path);

        var c = l2c.Config;
        Assert.Equal((64, 96, 2, 4, 2, 16, 128, 2048, tied), (c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.HeadDim, c.VocabSize, c.MaxSeqLen, c.TiedEmbeddings));
        Assert.Equal(RopeLayout.AdjacentPairs, c.RopeLayout);
        foreach (var (role, layer) in CheckpointTensors.All(hf.Config))
        {
            float[] expected = hf.Find(role, layer)!.ToFloatArray();
            float[] actual = l2c.Find(role, layer)!.ToFloatArray();
            if (role is TensorRole.Query or TensorRole.Key)
                AssertRopeRowsPermuted(expected, actual, heads: role == TensorRole.Query ? 4 : 2, headDim: 16, cols: 64);
            else
                Assert.Equal(expected, actual);
        }
        if (tied)
            Assert.Same(l2c.Find(TensorRole.TokenEmbedding), l2c.Find(TensorRole.LmHead));
    }

    [Fact]
    public void Header_vocab_is_negative_exactly_when_a_classifier_follows()
    {
        foreach (bool tied in new[] { true, false })
        {
            string directory = WriteTiny(_temp, new SyntheticModelOptions { TiedEmbeddings = tied }, $"hf-{tied}");
            string path = _temp.File($"model-{tied}.bin");
            using (var hf = HuggingFaceCheckpoint.Open(directory))
                Llama2cWriter.Write(hf, path);

            int vocab = BitConverter.ToInt32(File.ReadAllBytes(path), 5 * sizeof(int));
            Assert.Equal(tied ? 128 : -128, vocab);
            long weights = 4L * (SyntheticModelOptions.Preset("tiny").ToConfig() with { TiedEmbeddings = tied }).ParameterCount;
            Assert.Equal(7 * 4 + weights + 4L * 2048 * 16, new FileInfo(path).Length);
        }
    }

    [Fact]
    public void Rewriting_a_llama2c_checkpoint_reproduces_the_file()
    {
        string directory = WriteTiny(_temp);
        string first = _temp.File("first.bin"), second = _temp.File("second.bin");
        using (var hf = HuggingFaceCheckpoint.Open(directory))
            Llama2cWriter.Write(hf, first);
        using (var l2c = Llama2cCheckpoint.Open(first))
            Llama2cWriter.Write(l2c, second);

        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
    }

    [Theory]
    [InlineData("biases")]
    [InlineData("theta")]
    [InlineData("eps")]
    [InlineData("scaling")]
    [InlineData("head_dim")]
    public void Models_the_llama2c_header_cannot_describe_are_refused(string difference)
    {
        var options = difference switch
        {
            "biases" => new SyntheticModelOptions { Architecture = "qwen2" },
            "theta" => new SyntheticModelOptions { RopeTheta = 100000f },
            "eps" => new SyntheticModelOptions { RmsNormEps = 1e-6f },
            "scaling" => new SyntheticModelOptions { RopeScaling = new Llama3RopeScaling(8f, 1f, 4f, 8192) },
            _ => new SyntheticModelOptions { HeadDim = 32 },
        };
        string directory = WriteTiny(_temp, options);
        string path = _temp.File("model.bin");
        using var hf = HuggingFaceCheckpoint.Open(directory);

        var error = AssertFails(() => Llama2cWriter.Write(hf, path), path, "cannot write this model as llama2.c");
        Assert.Contains(difference switch
        {
            "biases" => "biases",
            "theta" => "rope_theta",
            "eps" => "rms_norm_eps",
            "scaling" => "scaling",
            _ => "head dim is 32",
        }, error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    /// <summary>Per head: llama2.c row 2i is Hugging Face row i, and row 2i + 1 is row headDim/2 + i.</summary>
    private static void AssertRopeRowsPermuted(float[] hf, float[] l2c, int heads, int headDim, int cols)
    {
        Assert.Equal(hf.Length, l2c.Length);
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < headDim / 2; i++)
            {
                for (int col = 0; col < cols; col++)
                {
                    Assert.Equal(hf[((h * headDim) + i) * cols + col], l2c[((h * headDim) + 2 * i) * cols + col]);
                    Assert.Equal(hf[((h * headDim) + headDim / 2 + i) * cols + col], l2c[((h * headDim) + 2 * i + 1) * cols + col]);
                }
            }
        }
    }
}
