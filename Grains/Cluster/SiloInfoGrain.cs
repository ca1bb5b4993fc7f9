using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Placement;
using Orleans.Concurrency;
using Orleans.Placement;

namespace FtpCluster.Grains.Cluster;

[NodePinnedPlacement, Immovable]
internal sealed class SiloInfoGrain(FtpClusterSiloOptions options, FtpClusterSiloDevice device, ILocalSiloDetails silo, LoadedStages stages)
    : Grain, ISiloInfoGrain
{
    public Task<SiloInfo> GetInfo() => Task.FromResult(new SiloInfo(
        options.NodeName, silo.SiloAddress, device.Name, device.Device.Description,
        Environment.ProcessId, options.MemoryBudgetBytes, stages.Snapshot()));
}

[StatelessWorker]
internal sealed class ClusterNodesGrain(FtpClusterNodeDirectory nodes) : Grain, IClusterNodesGrain
{
    public async Task<FtpClusterNode[]> GetActiveNodes() => [.. await nodes.ActiveNodesAsync()];
}
