using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Pipeline;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace FtpCluster.Api;

/// <summary>Ready: this silo is an active member of the cluster, and a deployment is loaded to serve requests.</summary>
internal sealed class ClusterReadyHealthCheck(IGrainFactory grains, FtpClusterSiloOptions silo) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var nodes = await grains.GetGrain<IClusterNodesGrain>(0).GetActiveNodes().WaitAsync(cancellationToken);
        if (!nodes.Any(n => n.NodeName == silo.NodeName))
            return HealthCheckResult.Unhealthy($"silo {silo.NodeName} is not an active member of the cluster yet");
        foreach (var deployment in await grains.GetGrain<IDeploymentListGrain>(0).Served().WaitAsync(cancellationToken))
            if (await grains.GetGrain<ICoordinatorGrain>(deployment.DeploymentId).Describe().WaitAsync(cancellationToken) is not null)
                return HealthCheckResult.Healthy($"silo {silo.NodeName} has joined {nodes.Length} silos; '{deployment.Name}' is loaded");
        return HealthCheckResult.Unhealthy($"silo {silo.NodeName} has joined; no deployment is loaded");
    }
}
