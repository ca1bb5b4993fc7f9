using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Benchmarks;
using FtpCluster.Grains.Hosting.Transport;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Placement;
using Microsoft.Extensions.DependencyInjection;

namespace FtpCluster.Cluster.Tests;

/// <summary>The transport probe between two silo processes: what it says it sent is what the other silo received.</summary>
public sealed class TransportProbeTests(BenchmarkCluster cluster) : IClassFixture<BenchmarkCluster>
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
    public async Task A_multi_MiB_step_crosses_from_silo_to_silo_and_back_intact_over_the_FtpCluster_transport()
    {
        var (probeKey, sinkKey) = Keys("a", "b");
        var sink = cluster.Client.GetGrain<ITransportSinkGrain>(sinkKey);
        var before = await sink.Totals();
        var clientBefore = cluster.Client.ServiceProvider.GetRequiredService<TcpTransportStatistics>().Snapshot();
        var packet = new byte[(8 << 20) + 12345]; // not a multiple of any buffer size
        new Random(42).NextBytes(packet);
        var step = new StepRequest(MicrobatchId: 7, SequenceIds: [1, 2], Positions: [3, 4], Tokens: [5, 6], Packet: packet,
            Samples: [new SampleRequest(Row: 1, Temperature: 0.5f, TopK: 3, TopP: 0.9f, Seed: 11, Draw: 2)], ReturnLogits: true);

        // Client -> a gateway -> probe on a -> sink on b, and the same bytes all the way back.
        var echoed = await cluster.Client.GetGrain<ITransportProbeGrain>(probeKey).Relay(sinkKey, step);
        var after = await sink.Totals();

        Assert.True(packet.AsSpan().SequenceEqual(echoed.Packet), "the packet came back changed");
        Assert.Equal(step with { Packet = null }, echoed with { Packet = null }, StepComparer.Instance);
        // Silo b took the packet in and sent it back through the FtpCluster transport (under Orleans' own these stay 0).
        var atB = after.Transport.Since(before.Transport);
        Assert.True(atB.ReceivedBytes >= packet.Length && atB.SentBytes >= packet.Length, $"silo b's transport: {atB}");
        Assert.True(after.Transport.Connections > 0);
        // So did this client's connection to its gateway.
        var atClient = cluster.Client.ServiceProvider.GetRequiredService<TcpTransportStatistics>().Snapshot().Since(clientBefore);
        Assert.True(atClient.ReceivedBytes >= packet.Length && atClient.SentBytes >= packet.Length, $"the client's transport: {atClient}");
    }

    /// <summary>Steps compared field by field (records compare their arrays by reference).</summary>
    private sealed class StepComparer : IEqualityComparer<StepRequest>
    {
        public static readonly StepComparer Instance = new();

        public bool Equals(StepRequest? x, StepRequest? y) =>
            x is not null && y is not null && x.MicrobatchId == y.MicrobatchId && x.ReturnLogits == y.ReturnLogits
            && (x.SequenceIds ?? []).SequenceEqual(y.SequenceIds ?? []) && (x.Positions ?? []).SequenceEqual(y.Positions ?? [])
            && (x.Tokens ?? []).SequenceEqual(y.Tokens ?? []) && x.Samples.SequenceEqual(y.Samples)
            && (x.Packet ?? []).AsSpan().SequenceEqual(y.Packet ?? []);

        public int GetHashCode(StepRequest obj) => obj.MicrobatchId.GetHashCode();
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
