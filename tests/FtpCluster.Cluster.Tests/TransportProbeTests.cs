using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Benchmarks;
using FtpCluster.Grains.Placement;

namespace FtpCluster.Cluster.Tests;

/// <summary>The transport probe between two silo processes: what it says it sent is what the other silo received.</summary>
public sealed class TransportProbeTests(ThreeSiloCluster cluster) : IClassFixture<ThreeSiloCluster>
{
    private static (string Probe, string Sink) Keys(string from, string to)
    {
        string run = $"transport-{Guid.NewGuid():N}";
        return (NodePinnedKey.Create($"{run}/probe", from), NodePinnedKey.Create($"{run}/sink", to));
    }

    [Theory]
    [InlineData(64 << 10, 1)]
    [InlineData(8 << 20, 3)] // the benchmark's largest packet passes Orleans' message limit
    public async Task Every_packet_the_probe_counts_arrives_whole_in_the_other_silo_process(int packetBytes, int inFlight)
    {
        var (probeKey, sinkKey) = Keys("a", "b");

        var measured = await cluster.Client.GetGrain<ITransportProbeGrain>(probeKey)
            .Measure(new TransportProbeRequest(sinkKey, packetBytes, inFlight, Seconds: 0.2));
        var received = await cluster.Client.GetGrain<ITransportSinkGrain>(sinkKey).Totals();

        Assert.Equal(("a", cluster.Nodes["a"].Process.ProcessId), (measured.SenderNode, measured.SenderProcessId));
        Assert.Equal(("b", cluster.Nodes["b"].Process.ProcessId), (received.NodeName, received.ProcessId));
        Assert.Equal((packetBytes, inFlight), (measured.PacketBytes, measured.InFlight));
        // Every lane sends at least once in the warm-up and once in the timed part.
        Assert.True(measured.WarmupPackets >= inFlight, $"{measured.WarmupPackets} warm-up packets from {inFlight} lanes");
        Assert.True(measured.Packets >= inFlight, $"{measured.Packets} timed packets from {inFlight} lanes");
        Assert.Equal(measured.WarmupPackets + measured.Packets, received.Packets);
        Assert.Equal(received.Packets * packetBytes, received.Bytes);
        Assert.Equal(measured.Packets * packetBytes, measured.Bytes);

        Assert.True(measured.Seconds > 0);
        Assert.True(measured.LatencyP50Milliseconds > 0);
        Assert.True(measured.LatencyP50Milliseconds <= measured.LatencyP90Milliseconds);
        Assert.True(measured.LatencyP90Milliseconds <= measured.LatencyMaxMilliseconds);
        Assert.True(measured.SenderCpuSeconds >= 0 && measured.ReceiverCpuSeconds >= 0);
    }

    [Fact]
    public void Embedded_silos_run_without_thread_pool_spinning()
    {
        if (!OperatingSystem.IsLinux()) return; // read through /proc
        string expected = Environment.GetEnvironmentVariable(EmbeddedCluster.ThreadPoolSpinLimitVariable) ?? "0";
        foreach (var silo in cluster.Nodes.Values)
        {
            var environment = File.ReadAllText($"/proc/{silo.Process.ProcessId}/environ").Split('\0');
            Assert.Contains($"{EmbeddedCluster.ThreadPoolSpinLimitVariable}={expected}", environment);
        }
    }

    [Fact]
    public async Task A_sink_on_the_probe_s_own_node_is_refused()
    {
        var (probeKey, sinkKey) = Keys("c", "c");

        var error = await Assert.ThrowsAsync<ArgumentException>(() => cluster.Client.GetGrain<ITransportProbeGrain>(probeKey)
            .Measure(new TransportProbeRequest(sinkKey, 1024, 1, Seconds: 0.1)));

        Assert.Contains("nothing would cross the network", error.Message, StringComparison.Ordinal);
    }
}
