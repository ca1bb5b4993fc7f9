using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Inference;

namespace FtpCluster.Compute.Tests.Ftp;

/// <summary>
/// Routed forward passes of a whole model (stories260K: 5 layers, grouped-query attention). Logits are
/// compared with the float64 reference run with the same per-block subsets, to 1e-5 relative (the
/// root-mean-square error of a row's logits over their norm).
/// </summary>
public sealed class TokenPrunerTests : IDisposable
{
    private const double Tolerance = 1e-5;
    private static readonly int[] IdsA = [1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283];
    private static readonly int[] IdsB = [1, 300, 301, 455, 12, 99, 461, 378, 401, 7, 256];
    private static readonly SparsitySchedule Schedule = new([0.2, 0.5, 0.3, 0.4, 0.25]);
    private static readonly LayerRange[] Stages = [new(0, 2), new(2, 4), new(4, 5)];

    private readonly CpuDevice _device = new();
    private readonly ICheckpoint _checkpoint;
    private readonly TransformerStage _model;

    public TokenPrunerTests()
    {
        _checkpoint = Checkpoint.Open(SharedModels.Root is null ? "" : SharedModels.PathTo("stories260K/stories260K.bin"));
        _model = new TransformerStage(ModelSlice.Load(_checkpoint, SliceSpec.Whole(_checkpoint.Config), _device), _device);
    }

    public void Dispose()
    {
        _model.Dispose();
        _checkpoint.Dispose();
        _device.Dispose();
    }

    private static ITokenRouter Router(RouterKind kind) => kind switch
    {
        RouterKind.Static => new StaticRouter(),
        RouterKind.Random => new RandomRouter(42),
        _ => new LearnedRouter(RouterMlp.Initial(3), new FeatureNormalization([8, 0.1f, 0.5f, 0.3f], [5, 0.1f, 0.3f, 0.2f])),
    };

    private static RoutingOptions Options(string routing) => routing switch
    {
        "block" => new RoutingOptions { Mode = RoutingMode.Block },
        "one-pass" => new RoutingOptions { Mode = RoutingMode.OnePass },
        _ => new RoutingOptions { Mode = RoutingMode.OnePass, Stages = Stages },
    };

    /// <summary>One sequence's rows of a step as the positions each block computed.</summary>
    private static int[]?[] SubsetsOf(RoutedStep step, int firstRow, int count, int firstPosition) =>
        step.ComputedRows.Select(rows => rows.Where(r => r >= firstRow && r < firstRow + count).Select(r => r - firstRow + firstPosition).ToArray())
            .ToArray<int[]?>();

    private void AssertMatchesReference(int[] ids, int[]?[] subsets, ReadOnlySpan<float> logits, string where)
    {
        int vocab = _model.Config.VocabSize;
        var expected = new ReferenceModel(_checkpoint).Logits(ids, subsets);
        for (int t = 0; t < ids.Length; t++)
            SubsetForwardTests.AssertClose(expected[t], logits.Slice(t * vocab, vocab), Tolerance, $"{where}, position {t}");
    }

    [SharedModelsTheory]
    [InlineData(RouterKind.Static, "block")]
    [InlineData(RouterKind.Random, "block")]
    [InlineData(RouterKind.Learned, "block")]
    [InlineData(RouterKind.Static, "one-pass")]
    [InlineData(RouterKind.Random, "one-pass")]
    [InlineData(RouterKind.Learned, "one-pass")]
    [InlineData(RouterKind.Random, "one-pass-staged")]
    [InlineData(RouterKind.Learned, "one-pass-staged")]
    public void Routed_logits_match_the_float64_reference_with_the_same_subsets(RouterKind kind, string routing)
    {
        var pruner = new TokenPruner(_model, Schedule, Router(kind));
        var step = pruner.Run([IdsA, IdsB], Options(routing));
        Assert.Equal(IdsA.Length + IdsB.Length, step.Rows);
        Assert.True(step.MeanSparsity > 0.2, $"mean sparsity {step.MeanSparsity}");
        int vocab = _model.Config.VocabSize;
        AssertMatchesReference(IdsA, SubsetsOf(step, 0, IdsA.Length, 0), step.Logits.AsSpan(0, IdsA.Length * vocab), "sequence A");
        AssertMatchesReference(IdsB, SubsetsOf(step, IdsA.Length, IdsB.Length, 0), step.Logits.AsSpan(IdsA.Length * vocab), "sequence B");
    }

    [SharedModelsTheory]
    [InlineData(RoutingMode.Block)]
    [InlineData(RoutingMode.OnePass)]
    public void Zero_sparsity_equals_the_dense_model_bit_for_bit(RoutingMode mode)
    {
        var pruner = new TokenPruner(_model, SparsitySchedule.Uniform(0, _model.Config.Layers), Router(RouterKind.Learned));
        var step = pruner.Run([IdsA], new RoutingOptions { Mode = mode });
        Assert.Equal(Generator.AllLogits(_model, IdsA), step.Logits);
        Assert.All(step.ComputedRows, rows => Assert.Equal(Enumerable.Range(0, IdsA.Length), rows));
    }

    [SharedModelsFact]
    public void Static_routing_keeps_the_first_token_and_the_most_recent_at_every_block()
    {
        var pruner = new TokenPruner(_model, SparsitySchedule.Uniform(0.5, _model.Config.Layers), new StaticRouter());
        int[] expected = [0, 9, 10, 11, 12, 13, 14, 15];
        Assert.All(pruner.Run([IdsA], new RoutingOptions()).ComputedRows, rows => Assert.Equal(expected, rows));
        var onePass = pruner.Run([IdsA], new RoutingOptions { Mode = RoutingMode.OnePass });
        Assert.Equal(Enumerable.Range(0, 16), onePass.ComputedRows[0]);
        Assert.All(onePass.ComputedRows.Skip(1), rows => Assert.Equal(expected, rows));
    }

    [SharedModelsFact]
    public void One_pass_runs_its_plan_with_block_0_dense()
    {
        var pruner = new TokenPruner(_model, Schedule, Router(RouterKind.Learned));
        var step = pruner.Run([IdsA, IdsB], new RoutingOptions { Mode = RoutingMode.OnePass });
        var plan = Assert.IsType<OnePassPlan>(step.Plan);
        Assert.Equal(step.ComputedRows, plan.BlockRows);
        Assert.Equal(step.Rows, plan.BlockRows[0].Length);
        Assert.Null(step.Features[0]);
        for (int b = 1; b < Schedule.Blocks; b++)
        {
            Assert.Equal(Schedule.Kept(b, IdsA.Length) + Schedule.Kept(b, IdsB.Length), plan.BlockRows[b].Length);
            // Every later block was planned from the features after block 0.
            Assert.Equal(step.AttentionScores.AsSpan(0, step.Rows).ToArray(), step.Features[b]!.Select(f => f.Score));
        }
        Assert.Null(pruner.Run([IdsA], new RoutingOptions()).Plan);
    }

    [SharedModelsFact]
    public void Stage_aware_plan_keeps_one_set_per_stage_segment()
    {
        var pruner = new TokenPruner(_model, Schedule, new RandomRouter(9));
        var step = pruner.Run([IdsA], new RoutingOptions { Mode = RoutingMode.OnePass, Stages = Stages });
        var plan = step.Plan!;
        int n = IdsA.Length;
        Assert.Equal(n, plan.BlockRows[0].Length);
        Assert.Equal(SparsitySchedule.KeptOf(n, 0.5), plan.BlockRows[1].Length);        // the first stage after block 0: block 1 alone
        Assert.Equal(plan.BlockRows[2], plan.BlockRows[3]);                                // one set for blocks 2 and 3 ...
        Assert.Equal(SparsitySchedule.KeptOf(n, (0.3 + 0.4) / 2), plan.BlockRows[2].Length); // ... sized by their mean
        Assert.Equal(SparsitySchedule.KeptOf(n, 0.25), plan.BlockRows[4].Length);

        // A row the middle stage computes, both its blocks compute.
        foreach (int r in Enumerable.Range(0, n))
            Assert.Equal(plan.Computes(r, 2), plan.BlocksOf(r).Contains(3));
    }

    [SharedModelsFact]
    public void Two_sequences_routed_in_one_batch_equal_each_routed_alone()
    {
        var pruner = new TokenPruner(_model, Schedule, Router(RouterKind.Learned));
        var together = pruner.Run([IdsA, IdsB], new RoutingOptions());
        var a = pruner.Run([IdsA], new RoutingOptions());
        var b = pruner.Run([IdsB], new RoutingOptions());
        int vocab = _model.Config.VocabSize;
        for (int block = 0; block < Schedule.Blocks; block++)
            Assert.Equal(a.ComputedRows[block].Concat(b.ComputedRows[block].Select(r => r + IdsA.Length)), together.ComputedRows[block]);
        var alone = a.Logits.Concat(b.Logits).ToArray();
        for (int r = 0; r < together.Rows; r++)
            SubsetForwardTests.AssertClose(alone.AsSpan(r * vocab, vocab).ToArray().Select(f => (double)f).ToArray(),
                together.Logits.AsSpan(r * vocab, vocab), 1e-6, $"row {r}");
    }

    /// <summary>
    /// logit = −log relative position + 20 · s − 5.5: older tokens and sparser blocks are computed. A decode
    /// step's token is the newest, at log relative position 0, so it is computed iff s ≥ 0.275.
    /// </summary>
    private static LearnedRouter OldAndSparseRouter()
    {
        var p = new float[RouterMlp.ParameterCount];
        const int firstBias = RouterMlp.Hidden * RouterMlp.Inputs, outputWeights = firstBias + RouterMlp.Hidden;
        p[0 * RouterMlp.Inputs + 0] = -1;
        p[outputWeights + 0] = 1;
        p[1 * RouterMlp.Inputs + 3] = 1;
        p[outputWeights + 1] = 20;
        p[^1] = -5.5f;
        return new LearnedRouter(new RouterMlp(p), FeatureNormalization.Identity);
    }

    [SharedModelsTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Decode_steps_match_the_reference_with_the_blocks_that_computed_each_token(bool pruneNewest)
    {
        var schedule = new SparsitySchedule([0.0, 0.2, 0.5, 0.1, 0.3]);
        var pruner = new TokenPruner(_model, schedule, OldAndSparseRouter());
        var options = new RoutingOptions { PruneNewest = pruneNewest };
        var sequence = pruner.NewSequence();
        int prefill = 12, vocab = _model.Config.VocabSize;
        var prefillStep = pruner.Step([sequence], [IdsA[..prefill]], options);
        var computed = SubsetsOf(prefillStep, 0, prefill, 0).Select(s => s!.ToList()).ToArray();
        AssertMatchesReference(IdsA[..prefill], [.. computed.Select(c => c.ToArray())], prefillStep.Logits, "prefill");

        // Per decode position, the blocks that compute it: with decode pruning, those where the logit is ≥ 0.
        int[][] expectedBlocks = pruneNewest ? [[2, 4], [2, 4], [2, 4], [2, 4]] : [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]];
        for (int p = prefill; p < IdsA.Length; p++)
        {
            var step = pruner.Step([sequence], [[IdsA[p]]], options);
            Assert.Equal(expectedBlocks[p - prefill], Enumerable.Range(0, schedule.Blocks).Where(b => step.ComputedRows[b].Length == 1));
            for (int b = 0; b < schedule.Blocks; b++)
                if (step.ComputedRows[b].Length == 1) computed[b].Add(p);
            var expected = new ReferenceModel(_checkpoint).Logits(IdsA[..(p + 1)], [.. computed.Select(c => c.ToArray())]);
            SubsetForwardTests.AssertClose(expected[p], step.Logits.AsSpan(0, vocab), Tolerance, $"decode position {p}");
        }
        Assert.Equal(IdsA.Length, sequence.Length);
        Assert.Equal(IdsA.Length, sequence.LatestScores.Count);
    }

    [SharedModelsFact]
    public void Decode_ranks_the_new_token_against_the_scores_of_the_whole_sequence()
    {
        var pruner = new TokenPruner(_model, Schedule, new StaticRouter());
        var sequence = pruner.NewSequence();
        var prefill = pruner.Step([sequence], [IdsA[..10]], new RoutingOptions());
        var step = pruner.Step([sequence], [[IdsA[10]]], new RoutingOptions());
        // Block 1 is routed with the latest scores after block 0: the new token's own and the prefill's final ones.
        var earlier = sequence.LatestScores.Take(10).ToArray();
        float score = step.AttentionScores[0];
        float expectedRank = (earlier.Count(s => s < score) + 0.5f * (earlier.Count(s => s == score) + 1)) / 11;
        Assert.Equal(new RouterFeatures(10, score, expectedRank, 0.5f), step.Features[1]![0]);
        Assert.Equal(prefill.Rows, earlier.Length);
    }

    [SharedModelsFact]
    public void Bad_requests_are_refused_clearly()
    {
        var error = Assert.Throws<ArgumentException>(() => new TokenPruner(_model, SparsitySchedule.Uniform(0.3, 4), new StaticRouter()));
        Assert.Contains("4 blocks but the model has 5 layers", error.Message);
        var pruner = new TokenPruner(_model, Schedule, new StaticRouter());
        error = Assert.Throws<ArgumentException>(() => pruner.Run([IdsA], new RoutingOptions { Stages = Stages }));
        Assert.Contains("one-pass", error.Message);
        error = Assert.Throws<ArgumentException>(() => pruner.Run([IdsA], new RoutingOptions { Mode = RoutingMode.OnePass, Stages = [new(0, 2), new(3, 5)] }));
        Assert.Contains("does not follow on from block 2", error.Message);
        using var part = new TransformerStage(ModelSlice.Load(_checkpoint, new SliceSpec(0, 3, true, false), _device), _device);
        error = Assert.Throws<ArgumentException>(() => new TokenPruner(part, Schedule, new StaticRouter()));
        Assert.Contains("needs the whole model", error.Message);
    }
}
