using FtpCluster.Cluster.Tests.Chaos;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Cluster.Tests;

/// <summary>A node that comes back (a new silo process under its name) receives stages again when the deployment next re-plans.</summary>
public sealed class SiloRejoinTests
{
    [RedisServerAndSharedModelsFact]
    public async Task A_restarted_node_is_planned_on_again_after_the_next_loss()
    {
        using var cluster = await ChaosCluster.StartAsync(namespaced: false);
        await using (var setup = await cluster.ConnectAsync(ChaosCluster.NodeNames))
        {
            await setup.Client.GetGrain<ICoordinatorGrain>(Deployment).Deploy(new DeploymentRequest(SharedModels.PathTo("stories260K", "stories260K.bin"), Stages: 3));
        }
        await using var watcher = await cluster.ConnectAsync(ChaosCluster.NodeNames);
        string home = await watcher.Client.GetGrain<ICoordinatorGrain>(Deployment).NodeName();
        string[] others = [.. ChaosCluster.NodeNames.Where(n => n != home)];
        // Through the coordinator's own silo, so the client's gateway is never the one that dies.
        await using var connection = await cluster.ConnectAsync(home);
        var coordinator = connection.Client.GetGrain<ICoordinatorGrain>(Deployment);
        // Long enough (the model's context is 512) that a kill lands mid-generation on an idle machine too.
        var request = new GenerationRequest([1, 461, 401], MaxTokens: 480, StopTokens: []);
        var expected = (await coordinator.Generate(request)).Ids;

        // The first node is lost and re-planned around, then comes back as a new process ...
        var first = await GenerateKilling(cluster, coordinator, request, others[0]);
        Assert.Equal(expected, first.Ids);
        Assert.DoesNotContain(others[0], first.Stages.Select(s => s.NodeName));
        await cluster.RestartAsync(others[0]);
        await WaitActive(connection.Client, others[0], cluster.Silo(others[0]).ProcessId);

        // ... so when the second is lost, the plan takes the first node's new incarnation (before: the home silo alone).
        var second = await GenerateKilling(cluster, coordinator, request, others[1]);
        Assert.Equal(expected, second.Ids);
        Assert.Equal(new[] { home, others[0] }.Order(StringComparer.Ordinal), second.Stages.Select(s => s.NodeName).Order(StringComparer.Ordinal));
        var info = await ChaosCluster.InfoAsync(connection.Client, others[0]);
        Assert.Contains(info.Stages, s => second.Stages.Any(t => t.GrainKey == s.GrainKey));
    }

    private const string Deployment = "rejoin";

    /// <summary>A generation during which <paramref name="victim"/> is killed, once the first stage has sent 20 steps on.</summary>
    private static async Task<GenerationReply> GenerateKilling(ChaosCluster cluster, ICoordinatorGrain coordinator, GenerationRequest request, string victim)
    {
        long sentBefore = (await coordinator.Reports())[0].PacketsSent;
        var generation = coordinator.Generate(request);
        while ((await coordinator.Reports())[0].PacketsSent < sentBefore + 20 && !generation.IsCompleted)
            await Task.Yield();
        Assert.False(generation.IsCompleted, "the generation ended before the silo could be killed");
        cluster.Kill(victim);
        return await generation.WaitAsync(TimeSpan.FromMinutes(2));
    }

    /// <summary>Until the membership lists the node's new process as active (its old incarnation gone).</summary>
    private static async Task WaitActive(IClusterClient client, string node, int processId)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (true)
        {
            var active = await client.GetGrain<IClusterNodesGrain>(0).GetActiveNodes();
            if (active.Count(n => n.NodeName == node) == 1 && (await ChaosCluster.InfoAsync(client, node)).ProcessId == processId) return;
            Assert.True(DateTime.UtcNow < deadline, $"node {node}'s new silo (process {processId}) is not active after a minute");
            await Task.Delay(200);
        }
    }
}
