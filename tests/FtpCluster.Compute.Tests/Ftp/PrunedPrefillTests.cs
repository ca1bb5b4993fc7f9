using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Ftp;

/// <summary>What the pruned prefill benchmark runs: the newest rows' logits, one-pass scores, the benchmark's figures.</summary>
public sealed class PrunedPrefillTests : IDisposable
{
    private static readonly int[] IdsA = [1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283];
    private static readonly int[] IdsB = [1, 300, 301, 455, 12, 99, 461, 378, 401, 7, 256];

    private readonly CpuDevice _device = new();
    private readonly TransformerStage _model;

    public PrunedPrefillTests()
    {
        _model = SharedModels.Root is null ? null! : TransformerStage.Load(SharedModels.PathTo("stories260K/stories260K.bin"), _device);
    }

    public void Dispose()
    {
        _model?.Dispose();
        _device.Dispose();
    }

    [SharedModelsTheory]
    [InlineData(RoutingMode.Block)]
    [InlineData(RoutingMode.OnePass)]
    public void Newest_logits_are_the_last_rows_of_every_rows_logits_bit_for_bit(RoutingMode mode)
    {
        var pruner = new TokenPruner(_model, SparsitySchedule.DenseFirstBlock(0.4, _model.Config.Layers), new StaticRouter());
        var options = new RoutingOptions { Mode = mode };
        var every = pruner.Run([IdsA, IdsB], options);
        var newest = pruner.Step([pruner.NewSequence(), pruner.NewSequence()], [IdsA, IdsB], options, LogitRows.Newest);
        int vocab = _model.Config.VocabSize;
        Assert.Equal(every.ComputedRows, newest.ComputedRows);
        Assert.Equal(2 * vocab, newest.Logits.Length);
        Assert.Equal(every.Logits.AsSpan((IdsA.Length - 1) * vocab, vocab).ToArray(), newest.Logits.AsSpan(0, vocab).ToArray());
        Assert.Equal(every.Logits.AsSpan((every.Rows - 1) * vocab, vocab).ToArray(), newest.Logits.AsSpan(vocab, vocab).ToArray());
    }

    [SharedModelsFact]
    public void One_pass_routing_scores_block_0_only()
    {
        var pruner = new TokenPruner(_model, SparsitySchedule.DenseFirstBlock(0.4, _model.Config.Layers), new StaticRouter());
        var onePass = pruner.Run([IdsA], new RoutingOptions { Mode = RoutingMode.OnePass });
        var block = pruner.Run([IdsA], new RoutingOptions { Mode = RoutingMode.Block });
        int n = IdsA.Length;
        // Block 0 computes every row in both modes, so its scores are the same; the plan needs no others.
        Assert.Equal(block.AttentionScores.AsSpan(0, n).ToArray(), onePass.AttentionScores.AsSpan(0, n).ToArray());
        Assert.All(onePass.AttentionScores.Skip(n), s => Assert.True(float.IsNaN(s)));
        Assert.Contains(block.AttentionScores.Skip(n), s => !float.IsNaN(s));
    }

    [SharedModelsFact]
    public void The_benchmark_reports_the_sparsity_and_flops_of_the_pruned_prefill()
    {
        var schedule = SparsitySchedule.DenseFirstBlock(0.4, _model.Config.Layers);
        var pruner = new TokenPruner(_model, schedule, new StaticRouter());
        var result = PrunedPrefillBenchmark.Run(pruner, new PrunedPrefillOptions(PromptTokens: 20, Reps: 2));
        var step = pruner.Run([ModelBenchmark.RandomPrompt(_model.Config, 20, 1)], new RoutingOptions { Mode = RoutingMode.OnePass });
        Assert.Equal(20, result.PromptTokens);
        Assert.Equal(step.MeanSparsity, result.SparsityAchieved, 12);
        Assert.Equal(0.4, result.SparsityAchieved, 1);
        Assert.Equal(FlopCount.Prefill(_model.Config, step.ComputedRows) / FlopCount.DensePrefill(_model.Config, 20), result.FlopsRatio, 12);
        Assert.InRange(result.FlopsRatio, 0.4, 0.8);
        Assert.True(result.DenseTokensPerSecond > 0 && result.PrunedTokensPerSecond > 0 && result.SpeedUp > 0);
    }
}
