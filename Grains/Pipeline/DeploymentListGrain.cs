using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Pipeline;

[GenerateSerializer]
[Alias("FtpCluster.DeploymentListRecord")]
public sealed class DeploymentListRecord
{
    [Id(0)] public List<ServedDeployment> Deployments { get; set; } = [];
}

/// <summary>Kept with the deployments' own records, so the list outlives any silo where they do.</summary>
internal sealed class DeploymentListGrain(
    [PersistentState("deployments", FtpClusterSiloBuilderExtensions.DeploymentStorage)] IPersistentState<DeploymentListRecord> record)
    : Grain, IDeploymentListGrain
{
    private List<ServedDeployment> Deployments => record.State.Deployments;

    public async Task Add(string deploymentId, string servedName)
    {
        var entry = new ServedDeployment(servedName, deploymentId);
        int index = Deployments.FindIndex(d => d.DeploymentId == deploymentId);
        if (index >= 0 && Deployments[index] == entry) return;
        if (index >= 0) Deployments[index] = entry;
        else Deployments.Add(entry);
        await record.WriteStateAsync();
    }

    public async Task Remove(string deploymentId)
    {
        if (Deployments.RemoveAll(d => d.DeploymentId == deploymentId) > 0) await record.WriteStateAsync();
    }

    public Task<string[]> Ids() => Task.FromResult(Deployments.Select(d => d.DeploymentId).ToArray());

    public Task<ServedDeployment[]> Served() => Task.FromResult(Deployments.ToArray());
}
