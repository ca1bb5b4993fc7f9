using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Placement;
using Orleans.Concurrency;
using Orleans.Placement;

namespace FtpCluster.Grains.Cluster;

/// <summary>What a silo says about itself, from inside its own process.</summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.SiloInfo")]
public sealed record SiloInfo(
    [property: Id(0)] string NodeName,
    [property: Id(1)] SiloAddress Silo,
    [property: Id(2)] string Device,
    [property: Id(3)] string DeviceDescription,
    [property: Id(4)] int ProcessId,
    [property: Id(5)] long MemoryBudgetBytes);

/// <summary>
/// A node-pinned probe: key it <c>ID@NODE</c> (<see cref="NodePinnedKey"/>) and it reports the silo it
/// actually runs on, so tests and operators check placement through the silos instead of assuming it.
/// </summary>
[Alias("FtpCluster.ISiloInfoGrain")]
public interface ISiloInfoGrain : IGrainWithStringKey
{
    [Alias("GetInfo")]
    Task<SiloInfo> GetInfo();
}

[NodePinnedPlacement, Immovable]
internal sealed class SiloInfoGrain(FtpClusterSiloOptions options, FtpClusterSiloDevice device, ILocalSiloDetails silo)
    : Grain, ISiloInfoGrain
{
    public Task<SiloInfo> GetInfo() => Task.FromResult(new SiloInfo(
        options.NodeName, silo.SiloAddress, device.Name, device.Device.Description,
        Environment.ProcessId, options.MemoryBudgetBytes));
}

/// <summary>
/// The FtpCluster nodes up with their published metadata, read fresh by whichever silo answers
/// (see <see cref="FtpClusterNodeDirectory.ActiveNodesAsync"/>).
/// </summary>
[Alias("FtpCluster.IClusterNodesGrain")]
public interface IClusterNodesGrain : IGrainWithIntegerKey
{
    [Alias("GetActiveNodes")]
    Task<FtpClusterNode[]> GetActiveNodes();
}

[StatelessWorker]
internal sealed class ClusterNodesGrain(FtpClusterNodeDirectory nodes) : Grain, IClusterNodesGrain
{
    public async Task<FtpClusterNode[]> GetActiveNodes() => [.. await nodes.ActiveNodesAsync()];
}
