using System.Text.Json;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Cli;

/// <summary><c>router static</c> and <c>bench model --router</c>: a router artifact without calibration, and the pruned prefill benchmark.</summary>
public sealed class RouterCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-router-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string SynthesizeModel(int layers)
    {
        string model = Path.Combine(_dir, "model");
        var (code, _, stderr) = CliTests.Run("models", "synth", "--preset", "tiny", "--layers", layers.ToString(), "--out", model);
        Assert.True(code == 0, stderr);
        return model;
    }

    [Fact]
    public void Router_static_writes_a_static_router_for_the_model_with_block_0_dense()
    {
        string model = SynthesizeModel(layers: 5);
        string router = Path.Combine(_dir, "router.json");
        var (code, stdout, stderr) = CliTests.Run("router", "static", "--model", model, "--sparsity", "0.4", "--out", router);
        Assert.True(code == 0, stderr);
        Assert.Contains("mean sparsity 0.4", stdout);

        using var checkpoint = Checkpoint.Open(model);
        var artifact = RouterArtifact.Load(router, checkpoint);
        Assert.Equal(RouterKind.Static, artifact.Router);
        Assert.Equal([0.0, 0.5, 0.5, 0.5, 0.5], artifact.Schedule.PerBlock);

        (code, _, stderr) = CliTests.Run("router", "static", "--model", model, "--sparsity", "0.8", "--out", router);
        Assert.Equal(2, code);
        Assert.Contains("--sparsity 0.8", stderr);
    }

    [Fact]
    public void Bench_model_with_a_router_compares_dense_and_pruned_prefill()
    {
        string model = SynthesizeModel(layers: 3);
        string router = Path.Combine(_dir, "router.json");
        var (code, _, stderr) = CliTests.Run("router", "static", "--model", model, "--sparsity", "0.2", "--out", router);
        Assert.True(code == 0, stderr);

        (code, var stdout, stderr) = CliTests.Run("bench", "model", "--model", model, "--router", router,
            "--routing", "block", "--prompt-tokens", "30", "--reps", "1", "--json");
        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("static", json.GetProperty("router_kind").GetString());
        Assert.Equal("block", json.GetProperty("routing").GetString());
        Assert.Equal(30, json.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(0.2, json.GetProperty("sparsity_target").GetDouble(), 12);
        // 30 tokens: block 0 computes all, blocks 1 and 2 skip 0.3 · 30 = 9 each.
        Assert.Equal(18.0 / 90, json.GetProperty("sparsity_achieved").GetDouble(), 12);
        Assert.InRange(json.GetProperty("flops_ratio").GetDouble(), 0.5, 0.9);
        Assert.True(json.GetProperty("speed_up").GetDouble() > 0);

        (code, _, stderr) = CliTests.Run("bench", "model", "--model", model, "--router", router, "--routing", "sideways");
        Assert.Equal(2, code);
        Assert.Contains("--routing expects one-pass or block", stderr);
    }
}
