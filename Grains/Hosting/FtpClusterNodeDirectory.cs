using Orleans.Runtime.MembershipService.SiloMetadata;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// The FtpCluster silos that are up, read on a silo from Orleans' own silo metadata.
/// </summary>
/// <remarks>
/// Why Orleans silo metadata (<c>UseSiloMetadata</c>, <see cref="ISiloMetadataCache"/>) rather than a grain
/// of our own: each silo publishes a fixed string map that every other silo fetches once when the silo
/// joins and drops when it leaves, so reading it is a local dictionary look-up with no call on the
/// placement path, and it follows membership without any code of ours. Its one gap: the cache is filled
/// asynchronously after a membership change, so a silo can be active before its metadata has arrived
/// here. <see cref="FindAsync"/> covers that window: it refreshes membership and waits (bounded) for the
/// metadata of silos that are up but not yet described, before it declares a node absent.
/// </remarks>
public sealed class FtpClusterNodeDirectory(IClusterMembershipService membership, ISiloMetadataCache metadata)
{
    /// <summary>
    /// How long to wait for the metadata of a silo that is up but not yet described. Orleans fetches it
    /// with one call right after the membership change, so this only runs out when that call failed
    /// (Orleans then retries after its failure-detection period) or the silo is not an FtpCluster silo.
    /// </summary>
    public static readonly TimeSpan MetadataArrivalTimeout = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan MetadataPollInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>Every active FtpCluster silo this silo knows the metadata of, ordered by node name.</summary>
    public IReadOnlyList<FtpClusterNode> ActiveNodes() =>
        ActiveSilos()
            .Select(silo => FtpClusterNode.FromMetadata(silo, metadata.GetSiloMetadata(silo).Metadata))
            .OfType<FtpClusterNode>()
            .OrderBy(node => node.NodeName, StringComparer.Ordinal)
            .ToArray();

    /// <summary>
    /// Every active FtpCluster silo once membership is read fresh from the table and every active silo's
    /// metadata has arrived (or <see cref="MetadataArrivalTimeout"/> has passed): the view a planner needs.
    /// </summary>
    public async Task<IReadOnlyList<FtpClusterNode>> ActiveNodesAsync(CancellationToken cancellationToken = default)
    {
        await membership.Refresh(cancellationToken: cancellationToken);
        var deadline = DateTime.UtcNow + MetadataArrivalTimeout;
        while (UndescribedSilos().Length > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(MetadataPollInterval, cancellationToken);
        return ActiveNodes();
    }

    /// <summary>
    /// The active silo named <paramref name="nodeName"/>. Throws <see cref="NodeNotInClusterException"/>
    /// when none is, once membership is fresh and every active silo is described; throws
    /// <see cref="InvalidOperationException"/> when two silos claim the name.
    /// </summary>
    public async Task<FtpClusterNode> FindAsync(string nodeName, CancellationToken cancellationToken = default)
    {
        if (Find(nodeName) is { } found) return found;

        // The node may have joined after this silo's last membership update: read the table once.
        await membership.Refresh(cancellationToken: cancellationToken);
        var deadline = DateTime.UtcNow + MetadataArrivalTimeout;
        while (true)
        {
            if (Find(nodeName) is { } node) return node;
            var undescribed = UndescribedSilos();
            if (undescribed.Length == 0 || DateTime.UtcNow >= deadline)
                throw new NodeNotInClusterException(nodeName, ActiveNodes().Select(n => n.ToString()).ToArray(),
                    undescribed.Select(s => s.ToString()).ToArray());
            await Task.Delay(MetadataPollInterval, cancellationToken);
        }
    }

    private SiloAddress[] UndescribedSilos() =>
        ActiveSilos().Where(silo => !metadata.GetSiloMetadata(silo).Metadata.ContainsKey(FtpClusterNode.NodeNameKey)).ToArray();

    private FtpClusterNode? Find(string nodeName)
    {
        var matches = ActiveNodes().Where(node => node.NodeName == nodeName).ToArray();
        return matches.Length switch
        {
            0 => null,
            1 => matches[0],
            _ => throw new InvalidOperationException(
                $"{matches.Length} silos claim node name '{nodeName}' ({string.Join(", ", matches.Select(m => m.Silo.Endpoint))}); node names must be unique in a cluster"),
        };
    }

    private IEnumerable<SiloAddress> ActiveSilos() =>
        membership.CurrentSnapshot.Members.Values
            .Where(member => member.Status == SiloStatus.Active)
            .Select(member => member.SiloAddress);
}
