using FtpCluster.Grains.Benchmarks;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Placement;

namespace FtpCluster.Cluster.Tests;

/// <summary>Node-pinned grains land on the silo their key names, checked by asking the silo process itself.</summary>
public sealed class PinnedPlacementTests(ThreeSiloCluster cluster) : IClassFixture<ThreeSiloCluster>
{
    [Fact]
    public async Task A_benchmark_grain_is_refused_on_silos_started_without_benchmark_grains()
    {
        string run = $"transport-{Guid.NewGuid():N}";
        var probe = cluster.Client.GetGrain<ITransportProbeGrain>(NodePinnedKey.Create($"{run}/probe", "a"));

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            probe.Measure(new TransportProbeRequest(NodePinnedKey.Create($"{run}/sink", "b"), 1024, 1, Seconds: 0.1)));
        Assert.Equal("benchmark grains are off on silo a: start it with --benchmark-grains to measure its transport", refused.Message);
    }

    private static readonly string[] StageIds = ["deployment-1/stage-0", "deployment-1/stage-1"];

    [Fact]
    public async Task Pinned_grains_run_in_the_process_of_their_node()
    {
        var probes = ThreeSiloCluster.NodeNames
            .SelectMany(node => StageIds.Select(id => (node, key: NodePinnedKey.Create(id, node))))
            .ToArray();
        var infos = await Task.WhenAll(probes.Select(p => cluster.Client.GetGrain<ISiloInfoGrain>(p.key).GetInfo()));

        for (int i = 0; i < probes.Length; i++)
        {
            var (node, key) = probes[i];
            var expected = cluster.Nodes[node];
            var info = infos[i];
            Assert.True(info.NodeName == node, $"{key} ran on node {info.NodeName}");
            Assert.Equal(expected.Process.ProcessId, info.ProcessId);
            Assert.Equal(expected.Ready.ProcessId, info.ProcessId);
            Assert.Equal(expected.Ready.Silo, info.Silo.Endpoint);
            Assert.Equal("cpu", info.Device);
            Assert.StartsWith("cpu: 1 threads", info.DeviceDescription, StringComparison.Ordinal);
            Assert.Equal(expected.Options.MemoryBudgetBytes, info.MemoryBudgetBytes);
        }
    }

    [Fact]
    public async Task Placement_on_a_node_that_is_not_in_the_cluster_fails_naming_it()
    {
        var grain = cluster.Client.GetGrain<ISiloInfoGrain>(NodePinnedKey.Create("deployment-1/stage-3", "d"));

        var error = await Assert.ThrowsAsync<NodeNotInClusterException>(grain.GetInfo);

        Assert.Equal("d", error.NodeName);
        Assert.Contains("no silo named 'd' is in the cluster", error.Message, StringComparison.Ordinal);
        foreach (var node in ThreeSiloCluster.NodeNames)
            Assert.Contains($"{node} (127.0.0.1:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pinned_grain_whose_key_names_no_node_is_not_placed_anywhere()
    {
        var grain = cluster.Client.GetGrain<ISiloInfoGrain>("deployment-1/stage-0");

        var error = await Assert.ThrowsAsync<ArgumentException>(grain.GetInfo);

        Assert.Equal("grain key 'deployment-1/stage-0' names no node: node-pinned grains are keyed ID@NODE", error.Message);
    }

    [Fact]
    public async Task Every_silo_publishes_its_node_device_budget_and_capacity()
    {
        var nodes = await cluster.Client.GetGrain<IClusterNodesGrain>(0).GetActiveNodes();

        Assert.Equal(ThreeSiloCluster.NodeNames, nodes.Select(n => n.NodeName));
        foreach (var node in nodes)
        {
            var expected = cluster.Nodes[node.NodeName];
            Assert.Equal(expected.Ready.Silo, node.Silo.Endpoint);
            Assert.Equal("cpu", node.Device);
            Assert.Equal(expected.Options.MemoryBudgetBytes, node.MemoryBudgetBytes);
            Assert.Equal(expected.Options.Capacity, node.Capacity);
        }
    }
}
