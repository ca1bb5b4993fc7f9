using FtpCluster.Client.Commands;
using FtpCluster.Compute.Models;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Cluster;

/// <summary>Where one stage ran: its silo, its layers [first, end) and the silo's process.</summary>
internal sealed record StageSummary(string Silo, int[] Layers, int Pid);

/// <summary>How a deployment is served: the name requests call it by (null: the model's), and its idle unload time.</summary>
internal sealed record ServingOptions(string? ServedName, int IdleUnloadSeconds);

/// <summary>A deployment's stages and the bytes each boundary carried during one command.</summary>
internal sealed record PipelineTraffic(string Deployment, StageSummary[] Stages, long[] WireBytes);

/// <summary>
/// One command's use of a pipeline deployment: the cluster (an embedded one it started, or a running one
/// it connected to), the coordinator of the deployment (deployed here unless the cluster already has
/// it) and the stages' byte counters as they stood before the command, so it reports its own traffic.
/// </summary>
internal sealed class PipelineSession : IAsyncDisposable
{
    private readonly CommandCluster _cluster;
    private readonly long[] _bytesBefore;

    private PipelineSession(CommandCluster cluster, string deploymentId, long[] bytesBefore)
    {
        _cluster = cluster;
        _bytesBefore = bytesBefore;
        DeploymentId = deploymentId;
    }

    public string DeploymentId { get; }

    public IClusterClient Client => _cluster.Client;

    public ICoordinatorGrain Coordinator => _cluster.Client.GetGrain<ICoordinatorGrain>(DeploymentId);

    /// <summary>The id <see cref="DeploymentIds.For"/> gives these options.</summary>
    public static string DeploymentIdFor(string modelPath, int stages, WireEncoding wire, TensorDType? storage, PruningOptions? pruning = null) =>
        DeploymentIds.For(modelPath, stages, wire.CliWord(), StorageWord(storage), pruning is null ? null : [.. pruning.RouterPaths],
            pruning?.StageAware ?? false, pruning?.PruneNewest ?? false);

    /// <summary>The --dtype word (f32, f16, bf16) that stages parse back; null keeps the file's type.</summary>
    public static string? StorageWord(TensorDType? storage) => storage?.ToString().ToLowerInvariant();

    /// <summary>Starts or connects to the cluster and makes sure the deployment is there.</summary>
    /// <param name="serving">How a deployment made here is served; null: under the model's name, unloaded after the default idle time.</param>
    public static async Task<PipelineSession> OpenAsync(ClusterTarget target, ModelOptions model, PruningOptions? pruning, CancellationToken cancellationToken,
        ServingOptions? serving = null)
    {
        var cluster = await CommandCluster.OpenAsync(target, silo =>
        {
            silo.Device = model.DeviceName;
            silo.Threads = model.Threads;
            // An embedded cluster loads what this command was given, wherever it is.
            silo.ModelRoots = EmbeddedCluster.ModelRootsFor([model.ModelPath, model.TokenizerPath, .. pruning?.RouterPaths ?? []]);
        }, cancellationToken);
        try
        {
            int stages = target.Stages ?? (await cluster.Client.GetGrain<IClusterNodesGrain>(0).GetActiveNodes().WaitAsync(cancellationToken)).Length;
            string deploymentId = DeploymentIdFor(model.ModelPath, stages, target.Wire, model.Storage, pruning);
            var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>(deploymentId);
            // A coordinator that was never deployed (or was unloaded since) reports no stages. A live deployment is used as it
            // is, even on fewer silos after a loss: deploying it again with other serving settings would be refused.
            var reports = await coordinator.Reports().WaitAsync(cancellationToken);
            if (reports.Length == 0)
            {
                await coordinator.Deploy(new DeploymentRequest(
                    Path.GetFullPath(model.ModelPath), stages, target.Wire.CliWord(), StorageWord(model.Storage),
                    Routers: pruning is null ? null : [.. pruning.RouterPaths], StageAwareRouting: pruning?.StageAware ?? false, PruneNewest: pruning?.PruneNewest ?? false,
                    Tokenizer: model.TokenizerPath is null ? null : Path.GetFullPath(model.TokenizerPath),
                    ServedName: serving?.ServedName,
                    IdleUnloadSeconds: serving?.IdleUnloadSeconds ?? DeploymentRequest.DefaultIdleUnloadSeconds))
                    .WaitAsync(cancellationToken);
                reports = await coordinator.Reports().WaitAsync(cancellationToken);
            }
            Console.Error.WriteLine($"deployment {deploymentId}: "
                + string.Join(", ", reports.Select(r => $"stage {r.Index} on {r.NodeName} layers [{r.FirstLayer}, {r.EndLayer})")));
            return new PipelineSession(cluster, deploymentId, [.. reports.Select(r => r.BytesSent)]);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The stages and the bytes each boundary carried since this session opened (on a shared deployment,
    /// other clients' requests in the meantime count too). The last stage sends nothing on, so there is
    /// one figure per boundary between stages.
    /// </summary>
    public async Task<PipelineTraffic> TrafficAsync(CancellationToken cancellationToken)
    {
        var reports = await Coordinator.Reports().WaitAsync(cancellationToken);
        var stages = reports.Select(r => new StageSummary(r.NodeName, [r.FirstLayer, r.EndLayer], r.ProcessId)).ToArray();
        long[] wireBytes = [.. reports.SkipLast(1).Select(r => r.BytesSent - _bytesBefore[r.Index])];
        return new PipelineTraffic(DeploymentId, stages, wireBytes);
    }

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();
}
