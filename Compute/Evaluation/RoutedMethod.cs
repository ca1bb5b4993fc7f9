using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// FTP token routing as an evaluation method: the whole sequence run through <see cref="TokenPruner"/>
/// with a router and a schedule, block by block or by a one-pass plan. The static, random, uniform and
/// learned methods are this with different routers and schedules (<see cref="EvalMethods"/>). With
/// <see cref="RoutingOptions.Stages"/>, the one-pass plan is the stage-aware one a pipeline of those stages
/// runs, so its quality can be set beside the per-block plan's.
/// </summary>
public sealed class RoutedMethod(TransformerStage model, string name, double sparsityTarget, RoutingOptions routing,
    SparsitySchedule schedule, ITokenRouter router) : IEvalMethod
{
    private readonly TokenPruner _pruner = new(model, schedule, router);

    public string Name => name;
    public string Routing => RoutingModes.Name(routing.Mode);
    public IReadOnlyList<LayerRange>? Stages => routing.Stages;
    public double SparsityTarget => sparsityTarget;
    public SparsitySchedule Schedule => schedule;
    public ITokenRouter Router => router;

    public MethodOutput Run(int[] ids)
    {
        var step = _pruner.Run([ids], routing);
        return new(step.Logits, step.ComputedRows);
    }
}
