using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Cluster;

/// <summary>
/// The FtpCluster nodes up with their published metadata, read fresh by whichever silo answers
/// (see <c>FtpClusterNodeDirectory.ActiveNodesAsync</c>).
/// </summary>
[Alias("FtpCluster.IClusterNodesGrain")]
public interface IClusterNodesGrain : IGrainWithIntegerKey
{
    [Alias("GetActiveNodes")]
    Task<FtpClusterNode[]> GetActiveNodes();
}
