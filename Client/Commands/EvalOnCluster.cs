using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Ftp;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>eval --stages N</c>: the evaluation sequences scored through a pipeline of stages, once dense with
/// f32 on the wire and once per router artifact (one-pass plans, the chosen encoding), on one cluster. The
/// bytes between stages give each router's <c>wire_bytes_ratio</c>; each stage's compute time is set
/// beside the share of the compute the planner gave it.
/// </summary>
internal static class EvalOnCluster
{
    public static async Task<ClusterMeasure[]> MeasureAsync(ClusterTarget target, ModelOptions model, IReadOnlyList<string> routerPaths,
        bool stageAware, IReadOnlyList<EvalSequence> sequences, CancellationToken cancellationToken)
    {
        await using var cluster = await CommandCluster.OpenAsync(target, silo =>
        {
            silo.Device = model.DeviceName;
            silo.Threads = model.Threads;
            silo.ModelRoots = EmbeddedCluster.ModelRootsFor([model.ModelPath, model.TokenizerPath, .. routerPaths]);
        }, cancellationToken);
        int stages = target.Stages ?? (await cluster.Client.GetGrain<Grains.Cluster.IClusterNodesGrain>(0).GetActiveNodes().WaitAsync(cancellationToken)).Length;
        string modelPath = Path.GetFullPath(model.ModelPath);

        async Task<(StageReport[] Reports, DeployedStage[] Plan)> Score(DeploymentRequest deployment)
        {
            var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>($"eval-{Guid.NewGuid():N}");
            await coordinator.Deploy(deployment).WaitAsync(cancellationToken);
            try
            {
                foreach (var sequence in sequences) await coordinator.Score(sequence.Ids).WaitAsync(cancellationToken);
                return (await coordinator.Reports().WaitAsync(cancellationToken), await coordinator.Stages().WaitAsync(cancellationToken));
            }
            finally
            {
                // Each measurement has a deployment of its own: a shared cluster must not keep it.
                await coordinator.Unload().WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
            }
        }

        long dense = (await Score(new DeploymentRequest(modelPath, stages, "f32"))).Reports.Sum(r => r.BytesSent);
        var measures = new List<ClusterMeasure>();
        foreach (string router in routerPaths)
        {
            var (reports, plan) = await Score(new DeploymentRequest(modelPath, stages, target.Wire.CliWord(),
                Routers: [Path.GetFullPath(router)], StageAwareRouting: stageAware));
            double total = reports.Sum(r => r.ComputeSeconds);
            measures.Add(new ClusterMeasure(router, target.Wire.CliWord(), dense, reports.Sum(r => r.BytesSent),
                [.. reports.Select((r, i) => new StageCompute(r.NodeName, [r.FirstLayer, r.EndLayer], plan[i].PlannedShare,
                    total == 0 ? 0 : r.ComputeSeconds / total, r.ComputeSeconds))]));
        }
        return [.. measures];
    }

    /// <summary>
    /// Each one-pass result of a router that ran on the cluster gets that router's measured byte ratio: the
    /// stage-aware result when the cluster planned stage-aware, else the per-block one.
    /// </summary>
    public static IReadOnlyList<MethodResult> WithWireBytes(IReadOnlyList<MethodResult> results, IReadOnlyList<RouterArtifact> routers,
        IReadOnlyList<ClusterMeasure> measures, bool stageAware) =>
        [.. results.Select(result =>
        {
            for (int i = 0; i < routers.Count; i++)
                if (result.Routing == "one-pass" && (result.Stages is not null) == stageAware && string.Equals(result.Method, routers[i].Router.ToString(), StringComparison.OrdinalIgnoreCase)
                    && Math.Abs(result.SparsityTarget - EvalMethodContext.TargetOf(routers[i])) < 1e-9)
                    return result with { WireBytesRatio = measures[i].WireBytesRatio };
            return result;
        })];
}
