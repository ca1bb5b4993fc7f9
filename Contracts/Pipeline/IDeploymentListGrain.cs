namespace FtpCluster.Grains.Pipeline;

/// <summary>The cluster's deployments, for <c>ftpcluster cluster deployments</c> (one grain, key 0).</summary>
[Alias("FtpCluster.IDeploymentListGrain")]
public interface IDeploymentListGrain : IGrainWithIntegerKey
{
    [Alias("Add")]
    Task Add(string deploymentId);

    [Alias("Remove")]
    Task Remove(string deploymentId);

    [Alias("Ids")]
    Task<string[]> Ids();
}
