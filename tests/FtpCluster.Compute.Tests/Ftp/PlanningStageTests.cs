using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tests.Ftp;

/// <summary>
/// A pruned pipeline in one process: a <see cref="PlanningStage"/> over the first slice makes each step's
/// one-pass plan, and later slices compute the rows it gives them. It must reproduce the single-process
/// <see cref="TokenPruner"/> bit for bit, prefill and decode, since both plan through the same code.
/// </summary>
public sealed class PlanningStageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-planning-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Three_stages_with_a_one_pass_plan_equal_the_token_pruner_bit_for_bit(bool stageAware, bool pruneNewest)
    {
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Layers = 6, Seed = 11 }, _dir);
        using var device = new CpuDevice();
        using var whole = TransformerStage.Load(_dir, device);
        int dim = whole.Config.Dim, vocab = whole.Config.VocabSize;
        var schedule = new SparsitySchedule([0.0, 0.5, 0.3, 0.6, 0.4, 0.2]);
        var router = new LearnedRouter(RouterMlp.Initial(5), new FeatureNormalization([8, 0.1f, 0.5f, 0.3f], [5, 0.1f, 0.3f, 0.2f]));
        LayerRange[] ranges = [new(0, 2), new(2, 4), new(4, 6)];
        var options = new RoutingOptions { Mode = RoutingMode.OnePass, Stages = stageAware ? ranges : null, PruneNewest = pruneNewest };

        int[][] prompts = [[1, 5, 9, 17, 40, 3, 3, 8, 90, 11], [1, 100, 3, 7, 7, 12]];
        int[][] decoded = [[21, 22, 23], [31, 32, 33]];
        var pruner = new TokenPruner(whole, schedule, router);
        var sequences = prompts.Select(_ => pruner.NewSequence()).ToArray();

        var stages = ranges.Select(r => new StageExecutor(TransformerStage.Load(_dir, device,
            new SliceSpec(r.First, r.End, Embedding: r.First == 0, Head: r.End == 6)))).ToArray();
        var first = new PlanningStage(stages[0], schedule, router, options);
        try
        {
            // The prompts together, then three decode steps of both sequences together.
            var steps = new List<int[][]> { prompts };
            for (int d = 0; d < 3; d++) steps.Add([[decoded[0][d]], [decoded[1][d]]]);
            foreach (var tokens in steps)
            {
                var expected = pruner.Step(sequences, tokens, options);

                long[] ids = [.. tokens.SelectMany((t, s) => Enumerable.Repeat((long)s, t.Length))];
                int[] positions = [.. tokens.SelectMany((t, s) => Enumerable.Range(sequences[s].Length - t.Length, t.Length))];
                var hidden = new float[ids.Length * dim];
                stages[0].Stage.Embed([.. tokens.SelectMany(t => t)], hidden);
                var plan = first.Forward(ids, positions, hidden);
                for (int s = 1; s < stages.Length; s++)
                    stages[s].Forward(ids, positions, hidden, [.. plan.BlockRows.Skip(ranges[s].First).Take(ranges[s].Count)]);
                var logits = new float[ids.Length * vocab];
                stages[^1].Stage.Logits(hidden, ids.Length, logits);

                Assert.Equal(expected.ComputedRows, plan.BlockRows);
                if (tokens == prompts) Assert.Contains(plan.BlockRows, rows => rows.Length < ids.Length); // the prefill was pruned
                Assert.Equal(expected.Logits, logits);
            }
        }
        finally
        {
            foreach (var stage in stages) stage.Dispose();
        }
    }
}
