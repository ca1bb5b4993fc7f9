using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Pipeline;

[GenerateSerializer]
[Alias("FtpCluster.DeploymentListRecord")]
public sealed class DeploymentListRecord
{
    [Id(0)] public List<string> Ids { get; set; } = [];
}

/// <summary>Kept with the deployments' own records, so the list outlives any silo where they do.</summary>
internal sealed class DeploymentListGrain(
    [PersistentState("deployments", FtpClusterSiloBuilderExtensions.DeploymentStorage)] IPersistentState<DeploymentListRecord> record)
    : Grain, IDeploymentListGrain
{
    public async Task Add(string deploymentId)
    {
        if (record.State.Ids.Contains(deploymentId)) return;
        record.State.Ids.Add(deploymentId);
        await record.WriteStateAsync();
    }

    public async Task Remove(string deploymentId)
    {
        if (record.State.Ids.Remove(deploymentId)) await record.WriteStateAsync();
    }

    public Task<string[]> Ids() => Task.FromResult(record.State.Ids.ToArray());
}
