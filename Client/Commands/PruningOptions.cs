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
/// (decode pruning: the router may skip a sequence's newest token too). Read from the command line by
/// <see cref="PruningOptionGroup"/>.
/// </summary>
/// <param name="RouterPaths">The router artifacts: one, except for <c>run</c>, whose request lines pick one by sparsity.</param>
internal sealed record PruningOptions(IReadOnlyList<string> RouterPaths, RoutingMode Mode, bool StageAware, bool PruneNewest)
{
    /// <summary>The router of a command that runs one (and of <c>run</c>'s lines that name no sparsity).</summary>
    public string RouterPath => RouterPaths[0];

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
