using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;

namespace FtpCluster.Client.Commands;

/// <summary>
/// FTP for <c>generate</c>, <c>score</c>, <c>bench pipeline</c> and <c>cluster up</c>:
/// <c>--router ROUTER.json</c> (an artifact from <c>calibrate</c>) with <c>--routing one-pass|block</c>
/// (in this process; a cluster always plans in one pass), <c>--stage-aware</c> (a cluster: one set of
/// tokens per stage, so skipped tokens skip whole stages and never cross to them) and <c>--prune-newest</c>
/// (decode pruning: the router may skip a sequence's newest token too).
/// </summary>
internal sealed record PruningOptions(string RouterPath, RoutingMode Mode, bool StageAware, bool PruneNewest)
{
    /// <summary>The switches <see cref="Read"/> takes as flags (without a value).</summary>
    public static readonly string[] Flags = ["stage-aware", "prune-newest"];

    /// <summary>The pruning options; null when no <c>--router</c> is given (the model runs dense).</summary>
    public static PruningOptions? Read(Arguments a)
    {
        string? router = a.String("router");
        string? routing = a.String("routing");
        bool stageAware = a.Flag("stage-aware"), pruneNewest = a.Flag("prune-newest");
        if (router is null)
        {
            if (routing is not null || stageAware || pruneNewest)
                throw new UsageException("--routing, --stage-aware and --prune-newest need --router ROUTER.json");
            return null;
        }
        var mode = routing switch
        {
            null or "one-pass" => RoutingMode.OnePass,
            "block" => RoutingMode.Block,
            _ => throw new UsageException($"--routing expects one-pass or block, got '{routing}'"),
        };
        return new PruningOptions(Path.GetFullPath(router), mode, stageAware, pruneNewest);
    }

    /// <summary>A cluster plans once per microbatch at its first stage; stages exist only on a cluster.</summary>
    public void CheckUsableWith(ClusterTarget? cluster)
    {
        if (cluster is not null && Mode == RoutingMode.Block)
            throw new UsageException("--routing block runs in one process only: a cluster's stages follow the one-pass plan of its first stage");
        if (cluster is null && StageAware)
            throw new UsageException("--stage-aware needs --stages N or --cluster HOST:PORT: in one process there are no stages");
    }

    public RoutingOptions Routing => new() { Mode = Mode, PruneNewest = PruneNewest };

    /// <summary>The artifact's router and schedule over <paramref name="model"/>; an artifact of another model is refused.</summary>
    public TokenPruner LoadPruner(TransformerStage model, string modelPath)
    {
        using var checkpoint = Checkpoint.Open(modelPath);
        var artifact = RouterArtifact.Load(RouterPath, checkpoint);
        return new TokenPruner(model, artifact.Schedule, artifact.CreateRouter());
    }
}
