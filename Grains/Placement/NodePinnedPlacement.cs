using FtpCluster.Grains.Hosting;
using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace FtpCluster.Grains.Placement;

/// <summary>
/// Places a grain on the silo whose node name its key ends with (<c>ID@NODE</c>, see
/// <see cref="NodePinnedKey"/>), and nowhere else: a stage's weights and KV cache belong to the node the
/// plan gave it. The node is part of the key, not a placement hint, so a grain's identity says where it
/// runs, a re-plan onto another node is a new grain, and every caller reaches the same activation.
/// </summary>
[GenerateSerializer]
[Alias("FtpCluster.NodePinnedPlacement")]
public sealed class NodePinnedPlacement : PlacementStrategy
{
    public static NodePinnedPlacement Singleton { get; } = new();
}

/// <summary>Places the grain class with <see cref="NodePinnedPlacement"/>; pair it with <c>[Immovable]</c>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class NodePinnedPlacementAttribute : PlacementAttribute
{
    public NodePinnedPlacementAttribute() : base(NodePinnedPlacement.Singleton) { }
}

/// <summary>
/// Finds the pinned node among the silos up through their published metadata and fails, never falls
/// back, when it is not there.
/// </summary>
internal sealed class NodePinnedPlacementDirector(FtpClusterNodeDirectory nodes) : IPlacementDirector
{
    public async Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string nodeName = NodePinnedKey.NodeOf(target.GrainIdentity.Key.ToString());
        var node = await nodes.FindAsync(nodeName);
        if (!context.GetCompatibleSilos(target).Contains(node.Silo))
            throw new InvalidOperationException(
                $"node '{nodeName}' ({node.Silo}) cannot host grain type '{target.GrainIdentity.Type}' (is it an older FtpCluster silo?)");
        return node.Silo;
    }
}
