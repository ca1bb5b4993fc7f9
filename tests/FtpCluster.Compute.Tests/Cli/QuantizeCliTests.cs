using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Cli;

/// <summary><c>models quantize</c>: a checkpoint to a Q8_0 GGUF file, and the types it refuses.</summary>
public sealed class QuantizeCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-cli-quantize-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Models_quantize_writes_a_q8_0_gguf_and_says_when_no_vocabulary_goes_in()
    {
        string source = Path.Combine(_dir, "hf");
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Seed = 2 }, source);
        string path = Path.Combine(_dir, "tiny-q8_0.gguf");

        var (code, stdout, stderr) = CliTests.Run("models", "quantize", "--model", source, "--type", "q8_0", "--out", path);

        Assert.True(code == 0, stderr);
        Assert.Contains($"wrote {path}: llama, 2 layers, tensors 5 F32, 16 Q8_0", stdout);
        Assert.Contains("no vocabulary written", stderr);
        Assert.Contains("quantizing to q8_0", stderr);
        using var file = GgufCheckpoint.Open(path);
        Assert.Equal(TensorDType.Q8_0, file.Find(TensorRole.Gate, 1)!.DType);
    }

    [Theory]
    [InlineData("q3_k", "--type: unknown quantization type 'q3_k'; this build writes q8_0, q4_0, q4_k, q6_k")]
    [InlineData("f16", "--type: unknown quantization type 'f16'; this build writes q8_0, q4_0, q4_k, q6_k")]
    public void Models_quantize_refuses_types_that_are_not_built(string type, string expected)
    {
        string source = Path.Combine(_dir, "hf");
        var (code, _, stderr) = CliTests.Run("models", "quantize", "--model", source, "--type", type, "--out", Path.Combine(_dir, "x.gguf"));

        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.False(File.Exists(Path.Combine(_dir, "x.gguf")));
    }
}
