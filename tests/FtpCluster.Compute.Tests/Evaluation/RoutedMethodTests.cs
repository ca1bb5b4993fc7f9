using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Tests.Evaluation;

/// <summary>Which router and schedule each token-routing method runs, with and without a router artifact.</summary>
public sealed class RoutedMethodTests : IDisposable
{
    private readonly CpuDevice _device = new();
    private readonly TransformerStage _model;
    private readonly EvalSequence[] _sequences;

    public RoutedMethodTests()
    {
        _model = TransformerStage.Load(SharedModels.Root is null ? "" : SharedModels.PathTo(AidreamsSequences.ModelFile), _device);
        _sequences = SharedModels.Root is null ? [] : AidreamsSequences.Make(_model, sampled: 1);
    }

    public void Dispose()
    {
        _model.Dispose();
        _device.Dispose();
    }

    private RoutedMethod Create(EvalMethodContext context, string name, double sparsity, RoutingMode routing) =>
        Assert.IsType<RoutedMethod>(EvalMethods.Find(name).Create(context, sparsity, new RoutingOptions { Mode = routing }));

    [SharedModelsFact]
    public void Without_a_router_the_baselines_run_the_uniform_schedule_of_their_routing()
    {
        var context = new EvalMethodContext(_model, _sequences);
        foreach (var routing in new[] { RoutingMode.Block, RoutingMode.OnePass })
        {
            var uniform = SparsitySchedule.Uniform(0.3, _model.Config.Layers, routing);
            foreach (var name in new[] { "static", "random", "uniform" })
            {
                var method = Create(context, name, 0.3, routing);
                Assert.Equal((name, RoutingModes.Name(routing), 0.3), (method.Name, method.Routing, method.SparsityTarget));
                Assert.Equal(uniform.PerBlock, method.Schedule.PerBlock);
            }
            Assert.IsType<StaticRouter>(Create(context, "uniform", 0.3, routing).Router);
            Assert.IsType<RandomRouter>(Create(context, "random", 0.3, routing).Router);
        }
        Assert.Throws<InvalidOperationException>(() => Create(context, "learned", 0.3, RoutingMode.OnePass));
    }

    [SharedModelsFact]
    public void With_a_router_the_baselines_share_its_schedule_and_uniform_runs_its_router()
    {
        var schedule = new SparsitySchedule([0, 0.2, 0.3, 0.7]);
        var learned = new LearnedRouter(RouterMlp.Initial(5), new FeatureNormalization([-1, 0.02f, 0.5f, 0.4f], [1, 0.03f, 0.3f, 0.2f]));
        var artifact = RouterArtifact.From(learned, schedule, "sha256:test");
        var context = new EvalMethodContext(_model, _sequences, [artifact], seed: 9);
        Assert.Same(artifact, context.RouterAt(0.3));
        Assert.Null(context.RouterAt(0.2));

        foreach (var name in new[] { "static", "random", "learned" })
            Assert.Equal(schedule.PerBlock, Create(context, name, 0.3, RoutingMode.OnePass).Schedule.PerBlock);
        var uniform = Create(context, "uniform", 0.3, RoutingMode.OnePass);
        Assert.Equal(SparsitySchedule.Uniform(0.3, 4, RoutingMode.OnePass).PerBlock, uniform.Schedule.PerBlock);
        Assert.Equal(learned.Mlp.Parameters, Assert.IsType<LearnedRouter>(uniform.Router).Mlp.Parameters);
        Assert.Equal(9ul, Assert.IsType<RandomRouter>(Create(context, "random", 0.3, RoutingMode.Block).Router).Seed);

        // The learned method runs the artifact's router exactly: its choices are the router's own.
        var method = Create(context, "learned", 0.3, RoutingMode.OnePass);
        var ids = _sequences[0].Ids;
        var output = method.Run(ids);
        var expected = new TokenPruner(_model, schedule, artifact.CreateRouter()).Run([ids], new RoutingOptions { Mode = RoutingMode.OnePass });
        Assert.Equal(expected.Logits, output.Logits);
        Assert.Equal(expected.ComputedRows, output.ComputedRows);
        Assert.Equal(ids.Length, output.ComputedRows[0].Length);
    }

    [SharedModelsFact]
    public void A_router_of_another_kind_is_not_run_as_the_learned_one()
    {
        var artifact = RouterArtifact.From(new StaticRouter(), SparsitySchedule.Uniform(0.3, 4, RoutingMode.OnePass), "sha256:test");
        var context = new EvalMethodContext(_model, _sequences, [artifact]);
        var error = Assert.Throws<InvalidOperationException>(() => Create(context, "learned", 0.3, RoutingMode.OnePass));
        Assert.Contains("holds a static router, not a learned one", error.Message);
        Assert.IsType<StaticRouter>(Create(context, "uniform", 0.3, RoutingMode.OnePass).Router);
    }

    /// <summary>
    /// With stage segments the method runs the stage-aware one-pass plan a pipeline of those stages runs:
    /// the pruner's own, one set of rows per segment, and its result names the segments.
    /// </summary>
    [SharedModelsFact]
    public void A_stage_aware_method_chooses_one_set_of_rows_per_stage_and_reports_the_stages()
    {
        var context = new EvalMethodContext(_model, _sequences);
        LayerRange[] stages = [new(0, 2), new(2, 4)];
        var routing = new RoutingOptions { Mode = RoutingMode.OnePass, Stages = stages };
        var method = Assert.IsType<RoutedMethod>(EvalMethods.Find("static").Create(context, 0.4, routing));
        Assert.Equal(stages, method.Stages);
        Assert.Null(Create(context, "static", 0.4, RoutingMode.OnePass).Stages);

        var ids = _sequences[0].Ids;
        var output = method.Run(ids);
        var expected = new TokenPruner(_model, method.Schedule, new StaticRouter()).Run([ids], routing);
        Assert.Equal(expected.Logits, output.Logits);
        Assert.Equal(ids.Length, output.ComputedRows[0].Length);
        Assert.Equal(output.ComputedRows[2], output.ComputedRows[3]); // one set for the second stage
        Assert.True(output.ComputedRows[2].Length < ids.Length);

        var results = Evaluator.Evaluate(_model, _sequences, [method, Create(context, "static", 0.4, RoutingMode.OnePass)]);
        Assert.Equal([[0, 2], [2, 4]], results[1].Stages);
        Assert.Equal("one-pass/2 stages", results[1].RoutingLabel);
        Assert.Null(results[2].Stages);
        Assert.Equal("one-pass", results[2].RoutingLabel);
    }
}
