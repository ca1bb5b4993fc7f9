using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Cluster.Tests;

/// <summary>A silo process killed in the middle of a generation: the pipeline re-plans and replays.</summary>
public sealed class SiloLossTests(ThreeSiloCluster cluster) : IClassFixture<ThreeSiloCluster>
{
    [SharedModelsFact]
    public async Task A_silo_killed_mid_generation_is_planned_around_and_the_output_is_the_fault_free_one()
    {
        string deployment = $"loss-{Guid.NewGuid():N}";
        var stages = await cluster.Client.GetGrain<ICoordinatorGrain>(deployment)
            .Deploy(new DeploymentRequest(SharedModels.PathTo("stories260K", "stories260K.bin"), Stages: 3));
        string home = await cluster.Client.GetGrain<ICoordinatorGrain>(deployment).NodeName();
        string victim = Victim(stages, home);

        // Talk through the coordinator's own silo, so the client's gateway is not the one that dies.
        await using var connection = await cluster.ConnectClientAsync(home);
        var coordinator = connection.Client.GetGrain<ICoordinatorGrain>(deployment);
        var request = new GenerationRequest([1, 461, 401], MaxTokens: 400, StopTokens: []);
        int[] expected;
        using (var device = new CpuDevice(1))
        using (var model = TransformerStage.Load(SharedModels.PathTo("stories260K", "stories260K.bin"), device))
            expected = Generator.Generate(model, request.PromptIds, new GenerationOptions { MaxTokens = request.MaxTokens }).Ids;

        // Kill the victim once the generation is under way: the first stage has sent 20 steps on.
        var generation = coordinator.Generate(request);
        while ((await coordinator.Reports())[0].PacketsSent < 20 && !generation.IsCompleted)
            await Task.Yield();
        Assert.False(generation.IsCompleted, "the generation ended before the silo could be killed");
        cluster.Nodes[victim].Process.Dispose();

        var reply = await generation.WaitAsync(TimeSpan.FromMinutes(3));
        Assert.Equal(expected, reply.Ids);
        // From the reply, not a later call: when a silo dies, Orleans may lose the directory entry that
        // leads clients to this coordinator, and a later call can reach a fresh, empty activation.
        var replanned = reply.Stages;
        Assert.Equal(2, replanned.Length);
        Assert.DoesNotContain(victim, replanned.Select(s => s.NodeName));
        Assert.Equal(0, replanned[0].FirstLayer);
        Assert.Equal(5, replanned[^1].EndLayer);
    }

    /// <summary>
    /// A stage's node other than the coordinator's and other than a: with localhost clustering the primary
    /// silo holds the membership table, and a cluster that loses it cannot agree on who else is gone
    /// (production clusters keep membership in Redis).
    /// </summary>
    internal static string Victim(DeployedStage[] stages, string coordinatorNode) =>
        stages.Select(s => s.NodeName).First(n => n != coordinatorNode && n != ThreeSiloCluster.NodeNames[0]);
}

/// <summary>Three silos that can each hold two layers of 4 MB, and a six-layer model that needs all three.</summary>
public sealed class SmallBudgetCluster : ThreeSiloCluster
{
    protected override long MemoryBudget(int node) => 9L * 1024 * 1024;
}

public sealed class NoCapacityTests(SmallBudgetCluster cluster) : IClassFixture<SmallBudgetCluster>, IDisposable
{
    private readonly string _model = Directory.CreateTempSubdirectory("ftp-capacity-").FullName;

    public void Dispose() => Directory.Delete(_model, recursive: true);

    [Fact]
    public async Task When_the_survivors_cannot_hold_the_model_the_request_fails_with_a_clear_error()
    {
        // 6 layers of about 3.9 MB (dim 256, hidden 1024): two per 9 MiB silo, so all three silos are needed.
        ModelSynthesizer.Write(SyntheticModelOptions.Preset("tiny") with { Layers = 6, Dim = 256, HiddenDim = 1024 }, _model);
        string deployment = $"capacity-{Guid.NewGuid():N}";
        // The budgets hold the weights with little to spare: the KV-cache room is stated, so the long generation is admitted.
        var stages = await cluster.Client.GetGrain<ICoordinatorGrain>(deployment).Deploy(new DeploymentRequest(_model, Stages: 3, KvCacheBytesPerStage: 64 << 20));
        Assert.All(stages, s => Assert.Equal(2, s.EndLayer - s.FirstLayer));
        string home = await cluster.Client.GetGrain<ICoordinatorGrain>(deployment).NodeName();
        string victim = SiloLossTests.Victim(stages, home);
        await using var connection = await cluster.ConnectClientAsync(home);
        var coordinator = connection.Client.GetGrain<ICoordinatorGrain>(deployment);

        // Kill the victim while a generation is under way (so the request is already with this coordinator).
        var generation = coordinator.Generate(new GenerationRequest([1, 2, 3], MaxTokens: 2000, StopTokens: []));
        while ((await coordinator.Reports())[0].PacketsSent < 5 && !generation.IsCompleted)
            await Task.Yield();
        cluster.Nodes[victim].Process.Dispose();
        // Bounded: recovery gives up within its deadline; the wait below only keeps a broken build from hanging.
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => generation.WaitAsync(TimeSpan.FromMinutes(3)));
        Assert.Contains($"silo {victim} left the cluster and the survivors cannot hold the model", error.Message);
        Assert.Contains("memory budgets cannot hold 6 layers", error.Message);
    }
}
