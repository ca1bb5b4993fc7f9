using FtpCluster.Compute.Calibration;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Tests.Evaluation;

namespace FtpCluster.Compute.Tests.Calibration;

/// <summary>
/// The calibration objective and router training on aidreams260K, with tiny settings: 24 sampled sequences of
/// up to 128 tokens (the model's context; shorter samples leave too little to prune for a few iterations to
/// show), a short warm-up and 30 iterations.
/// </summary>
public sealed class RouterTrainingTests : IDisposable
{
    private readonly CpuDevice _device = new();
    private readonly TransformerStage _model;
    private readonly int[][] _sequences;

    public RouterTrainingTests()
    {
        _model = TransformerStage.Load(SharedModels.Root is null ? "" : SharedModels.PathTo(AidreamsSequences.ModelFile), _device);
        var sequences = new List<int[]>();
        for (int seed = 0; sequences.Count < 24; seed++)
        {
            var ids = Generator.Generate(_model, [1], new GenerationOptions
            {
                MaxTokens = _model.Config.MaxSeqLen - 1,
                Sampling = new SamplingOptions { Temperature = 1, Seed = seed },
                StopTokens = new HashSet<int> { 1, 2 },
            }).Ids;
            if (ids.Length >= 24) sequences.Add(ids);
        }
        _sequences = [.. sequences];
    }

    public void Dispose()
    {
        _model.Dispose();
        _device.Dispose();
    }

    [SharedModelsFact]
    public void The_objective_is_zero_for_dense_and_batching_does_not_change_it()
    {
        var objective = new CalibrationObjective(_model, _sequences, RoutingMode.OnePass);
        var dense = objective.Score(new StaticRouter(), SparsitySchedule.Uniform(0, _model.Config.Layers));
        Assert.Equal((0.0, 1.0), (dense.Kl, dense.Top1Agreement));
        Assert.Equal(1, dense.PerplexityRatio, 12);

        // One sequence at a time or all together: the same figures, sequence by sequence.
        var schedule = SparsitySchedule.Uniform(0.4, _model.Config.Layers, RoutingMode.OnePass);
        var together = objective.Run(new StaticRouter(), schedule, [.. Enumerable.Range(0, _sequences.Length)]);
        for (int s = 0; s < _sequences.Length; s++)
        {
            var alone = Assert.Single(objective.Run(new StaticRouter(), schedule, [s]));
            Assert.Equal(alone.Metrics.KlDivergence, together[s].Metrics.KlDivergence);
        }
        Assert.True(objective.Score(new StaticRouter(), schedule).Kl > 0);
    }

    [SharedModelsFact]
    public void Training_lowers_the_objective_below_the_static_router_and_its_own_warm_up()
    {
        var objective = new CalibrationObjective(_model, _sequences, RoutingMode.OnePass);
        var schedule = SparsitySchedule.Uniform(0.4, _model.Config.Layers, RoutingMode.OnePass);
        var staticScore = objective.Score(new StaticRouter(), schedule);
        ObjectiveScore? warmedUp = null;
        var result = RouterTraining.Train(objective, schedule,
            new TrainingOptions { GuideIterations = 150, Iterations = 30, BatchSequences = 12, ScoreEvery = 10, Seed = 1 },
            (iteration, score, _) => warmedUp ??= iteration == 0 ? score : null);

        Assert.NotNull(warmedUp);
        Assert.True(result.Iteration > 0, "the distillation iterations improved on the guide warm-up");
        Assert.True(result.Score.Kl < warmedUp.Kl, $"trained KL {result.Score.Kl} against {warmedUp.Kl} after the warm-up");
        Assert.True(result.Score.Kl < staticScore.Kl, $"trained KL {result.Score.Kl} against {staticScore.Kl} for the static router");
        // The score is the returned router's own.
        Assert.Equal(result.Score, objective.Score(result.Router, schedule));
    }
}
