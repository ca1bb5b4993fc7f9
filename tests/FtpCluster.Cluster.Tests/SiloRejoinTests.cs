using FtpCluster.Cluster.Tests.Chaos;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
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
            await setup.Client.GetGrain<ICoordinatorGrain>(Deployment).Deploy(new DeploymentRequest(Model, Stages: 3));
        }
        await using var watcher = await cluster.ConnectAsync(ChaosCluster.NodeNames);
        string home = await watcher.Client.GetGrain<ICoordinatorGrain>(Deployment).NodeName();
        string[] others = [.. ChaosCluster.NodeNames.Where(n => n != home)];
        // Through the coordinator's own silo, so the client's gateway is never the one that dies.
        await using var connection = await cluster.ConnectAsync(home);
        var coordinator = connection.Client.GetGrain<ICoordinatorGrain>(Deployment);
        // Long enough that a kill lands mid-generation on an idle machine, short enough that a generation with a
        // recovery in it answers within the client's 30 s response timeout on a loaded one.
        var request = new GenerationRequest([1, 461, 401], MaxTokens: 150, StopTokens: []);
        int[] expected;
        using (var device = new CpuDevice(1))
        using (var model = TransformerStage.Load(Model, device))
            expected = Generator.Generate(model, request.PromptIds, new GenerationOptions { MaxTokens = request.MaxTokens }).Ids;

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

    private static string Model => SharedModels.PathTo("stories260K", "stories260K.bin");

    /// <summary>A generation during which <paramref name="victim"/> is killed, once the first stage has sent 5 steps on.</summary>
    private static async Task<GenerationReply> GenerateKilling(ChaosCluster cluster, ICoordinatorGrain coordinator, GenerationRequest request, string victim)
    {
        long sentBefore = (await coordinator.Reports())[0].PacketsSent;
        var generation = coordinator.Generate(request);
        while ((await coordinator.Reports())[0].PacketsSent < sentBefore + 5 && !generation.IsCompleted)
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
