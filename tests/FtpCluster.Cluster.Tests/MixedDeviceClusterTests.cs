using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Placement;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// Silo a on ILGPU (its CPU accelerator standing in for a GPU), b and c on the CPU backend, each measuring its
/// capacity when it starts, as a silo given no <c>--capacity</c> does.
/// </summary>
public sealed class MixedDeviceCluster : ThreeSiloCluster
{
    protected override void Configure(FtpClusterSiloOptions[] options)
    {
        options[0].Device = "ilgpu-cpu";
        foreach (var silo in options) silo.MeasureCapacity = true;
    }
}

/// <summary>
/// stories260K over a cluster that mixes devices: the planner reads each silo's measured capacity (the ILGPU CPU
/// accelerator is far slower than the SIMD backend, so its silo gets the fewest layers), the stages run on their
/// silos' devices, and the pipeline's logits are the single process's.
/// </summary>
public sealed class MixedDeviceClusterTests(MixedDeviceCluster cluster) : IClassFixture<MixedDeviceCluster>
{
    private static readonly int[] Ids = [1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435];

    private static string ModelPath => SharedModels.PathTo("stories260K", "stories260K.bin");

    [SharedModelsFact]
    public async Task Mixed_silos_plan_by_measured_capacity_and_give_the_single_process_logits()
    {
        var nodes = (await cluster.Client.GetGrain<IClusterNodesGrain>(0).GetActiveNodes()).ToDictionary(n => n.NodeName);
        Assert.Equal("ilgpu-cpu", nodes["a"].Device);
        Assert.Equal("cpu", nodes["b"].Device);
        Assert.True(nodes["a"].Capacity < nodes["b"].Capacity && nodes["a"].Capacity < nodes["c"].Capacity,
            $"measured capacities a {nodes["a"].Capacity}, b {nodes["b"].Capacity}, c {nodes["c"].Capacity}: the ILGPU CPU accelerator should be the slowest");

        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>($"mixed-{Guid.NewGuid():N}");
        var stages = await coordinator.Deploy(new DeploymentRequest(ModelPath, Stages: 3, Wire: "f32"));
        var onIlgpu = stages.Single(s => s.NodeName == "a");
        Assert.True(stages.All(s => s == onIlgpu || s.EndLayer - s.FirstLayer >= onIlgpu.EndLayer - onIlgpu.FirstLayer),
            $"the slowest silo got more layers than another: {string.Join(", ", stages.Select(s => $"{s.NodeName} [{s.FirstLayer}, {s.EndLayer})"))}");
        var info = await cluster.Client.GetGrain<ISiloInfoGrain>(NodePinnedKey.Create("mixed-probe", "a")).GetInfo();
        Assert.StartsWith("ilgpu cpu accelerator", info.DeviceDescription, StringComparison.Ordinal);

        var result = await coordinator.Score(Ids);
        var actual = result.LogitValues();
        float[] expected;
        using (var device = new CpuDevice(1))
        using (var model = TransformerStage.Load(ModelPath, device))
            expected = Generator.AllLogits(model, Ids);
        Assert.Equal(expected.Length, actual.Length);
        int vocab = result.VocabSize;
        for (int t = 0; t < Ids.Length; t++)
        {
            double diff = 0, norm = 0;
            for (int i = t * vocab; i < (t + 1) * vocab; i++)
            {
                diff += (double)(actual[i] - expected[i]) * (actual[i] - expected[i]);
                norm += (double)expected[i] * expected[i];
            }
            // The ILGPU stage adds in another order than the CPU's SIMD kernels: equal to float32 rounding, not bit for bit.
            Assert.True(Math.Sqrt(diff / norm) <= 1e-5, $"position {t}: relative logit error {Math.Sqrt(diff / norm):E2}");
        }
    }
}
