namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// The cluster's deployments (one grain, key 0), for <c>ftpcluster cluster deployments</c> and for the HTTP API, which
/// finds a request's deployment by the name the request gives as its <c>model</c>.
/// </summary>
[Alias("FtpCluster.IDeploymentListGrain")]
public interface IDeploymentListGrain : IGrainWithIntegerKey
{
    /// <summary>Adds a deployment (again: its served name is updated, its place kept).</summary>
    [Alias("Add")]
    Task Add(string deploymentId, string servedName);

    [Alias("Remove")]
    Task Remove(string deploymentId);

    [Alias("Ids")]
    Task<string[]> Ids();

    /// <summary>Every deployment and its served name, oldest first: of two with one name, requests go to the older.</summary>
    [Alias("Served")]
    Task<ServedDeployment[]> Served();
}

/// <summary>A deployment and the name requests call it by.</summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.ServedDeployment")]
public sealed record ServedDeployment(
    [property: Id(0)] string Name,
    [property: Id(1)] string DeploymentId);
