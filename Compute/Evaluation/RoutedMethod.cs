using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// FTP token routing as an evaluation method: the whole sequence run through <see cref="TokenPruner"/>
/// with a router and a schedule, block by block or by a one-pass plan. The static, random, uniform and
/// learned methods are this with different routers and schedules (<see cref="EvalMethods"/>).
/// </summary>
public sealed class RoutedMethod(TransformerStage model, string name, double sparsityTarget, RoutingMode routing,
    SparsitySchedule schedule, ITokenRouter router) : IEvalMethod
{
    private readonly TokenPruner _pruner = new(model, schedule, router);
    private readonly RoutingOptions _options = new() { Mode = routing };

    public string Name => name;
    public string Routing => RoutingModes.Name(routing);
    public double SparsityTarget => sparsityTarget;
    public SparsitySchedule Schedule => schedule;
    public ITokenRouter Router => router;

    public MethodOutput Run(int[] ids)
    {
        var step = _pruner.Run([ids], _options);
        return new(step.Logits, step.ComputedRows);
    }
}
