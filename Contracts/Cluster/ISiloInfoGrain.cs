using FtpCluster.Grains.Placement;

namespace FtpCluster.Grains.Cluster;

/// <summary>What a silo says about itself, from inside its own process.</summary>
/// <param name="Stages">The stages whose weights it holds now, of any deployment and placement.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.SiloInfo")]
public sealed record SiloInfo(
    [property: Id(0)] string NodeName,
    [property: Id(1)] SiloAddress Silo,
    [property: Id(2)] string Device,
    [property: Id(3)] string DeviceDescription,
    [property: Id(4)] int ProcessId,
    [property: Id(5)] long MemoryBudgetBytes,
    [property: Id(6)] LoadedStage[] Stages);

/// <summary>A stage whose weights a silo holds: its grain (one per deployment, placement and stage index) and their size.</summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.LoadedStage")]
public sealed record LoadedStage(
    [property: Id(0)] string GrainKey,
    [property: Id(1)] string DeploymentId,
    [property: Id(2)] int Index,
    [property: Id(3)] long WeightBytes);

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
