using System.Text.Json;

namespace FtpCluster.Compute.Tests.Cli;

/// <summary><c>models synth --format gguf</c> and a GGUF file through <c>models info</c> and <c>generate</c>.</summary>
public sealed class GgufCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-cli-gguf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Models_synth_writes_a_gguf_that_info_and_generate_read()
    {
        string path = Path.Combine(_dir, "tiny.gguf");
        var (code, stdout, stderr) = CliTests.Run("models", "synth", "--preset", "tiny", "--layers", "3", "--dtype", "f16", "--format", "gguf", "--out", path);
        Assert.True(code == 0, stderr);
        Assert.Contains("GGUF", stdout);

        (code, stdout, stderr) = CliTests.Run("models", "info", path, "--json");
        Assert.True(code == 0, stderr);
        var info = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(3, info.GetProperty("layers").GetInt32());
        Assert.Equal("LlamaForCausalLM", info.GetProperty("architecture").GetString());
        Assert.Equal(["F32", "F16"], info.GetProperty("d_types").EnumerateArray().Select(e => e.GetString()));

        (code, stdout, stderr) = CliTests.Run("generate", "--model", path, "--ids", "[1,2,3]", "--max-tokens", "5", "--json");
        Assert.True(code == 0, stderr);
        Assert.Equal(8, JsonDocument.Parse(stdout).RootElement.GetProperty("ids").GetArrayLength());
    }

    [Fact]
    public void Models_synth_refuses_an_unknown_format_and_shards_for_gguf()
    {
        var (code, _, stderr) = CliTests.Run("models", "synth", "--format", "onnx", "--out", Path.Combine(_dir, "x"));
        Assert.Equal(2, code);
        Assert.Contains("--format must be hf or gguf, got 'onnx'", stderr);

        (code, _, stderr) = CliTests.Run("models", "synth", "--format", "gguf", "--shard-mb", "1", "--out", Path.Combine(_dir, "x.gguf"));
        Assert.Equal(2, code);
        Assert.Contains("--shard-mb applies to --format hf only", stderr);
    }
}
