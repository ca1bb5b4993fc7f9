using System.Diagnostics;
using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Benchmarks;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Placement;
using Xunit.Abstractions;

namespace FtpCluster.Cluster.Tests;

/// <summary>What the silos' transport does when a silo goes, and what the survivors carry afterwards.</summary>
internal static class TransportChecks
{
    /// <summary>How often membership is read while waiting for it to change: a poll with a bound, not a fixed wait.</summary>
    public static readonly TimeSpan MembershipPoll = TimeSpan.FromMilliseconds(200);

    /// <summary>Relays a pseudo-random step of <paramref name="bytes"/> from node <paramref name="from"/> to <paramref name="to"/> and back; fails unless it returns intact.</summary>
    public static async Task RelayIntactAsync(IClusterClient client, string from, string to, int bytes)
    {
        string run = $"loss-{Guid.NewGuid():N}";
        var packet = new byte[bytes];
        new Random(bytes).NextBytes(packet);
        var step = new StepRequest(MicrobatchId: 1, SequenceIds: null, Positions: null, Tokens: null, Packet: packet, Samples: [], ReturnLogits: false);

        var echoed = await client.GetGrain<ITransportProbeGrain>(NodePinnedKey.Create($"{run}/probe", from))
            .Relay(NodePinnedKey.Create($"{run}/sink", to), step);

        Assert.True(packet.AsSpan().SequenceEqual(echoed.Packet), $"{bytes} bytes from {from} to {to} and back came back changed");
    }

    /// <summary>
    /// Waits until the active nodes (read through <paramref name="client"/>) no longer include <paramref name="node"/>;
    /// answers them. Until the cluster has declared the node dead a read may fail trying to reach it: that is a
    /// "not yet" too.
    /// </summary>
    public static async Task<string[]> WaitUntilGoneAsync(IClusterClient client, string node, TimeSpan bound)
    {
        var nodes = client.GetGrain<IClusterNodesGrain>(0);
        var clock = Stopwatch.StartNew();
        string last = "";
        while (true)
        {
            try
            {
                string[] active = [.. (await nodes.GetActiveNodes()).Select(n => n.NodeName)];
                if (!active.Contains(node)) return active;
                last = string.Join(", ", active);
            }
            catch (OrleansMessageRejectionException e)
            {
                last = e.Message;
            }
            Assert.True(clock.Elapsed < bound, $"silo {node} is still in the cluster {bound} after it went; last read: {last}");
            await Task.Delay(MembershipPoll);
        }
    }
}

/// <summary>A silo process killed: its peers' connections to it end, Orleans declares it dead, the survivors carry on.</summary>
public sealed class KilledSiloTransportTests(BenchmarkCluster cluster, ITestOutputHelper output) : IClassFixture<BenchmarkCluster>
{
    [Fact]
    public async Task A_killed_silo_is_declared_dead_and_the_survivors_still_carry_large_steps_between_them()
    {
        // Through a's gateway: a survives (and, the primary of localhost clustering, keeps the membership).
        await using var connection = await cluster.ConnectClientAsync("a");
        // Connections from a and b to c carry traffic when c goes.
        await TransportChecks.RelayIntactAsync(connection.Client, "a", "c", 1 << 20);
        await TransportChecks.RelayIntactAsync(connection.Client, "b", "c", 1 << 20);

        cluster.Nodes["c"].Process.Dispose(); // SIGKILL: its kernel closes its sockets, nothing else is said
        var clock = Stopwatch.StartNew();

        var survivors = await TransportChecks.WaitUntilGoneAsync(connection.Client, "c", TimeSpan.FromMinutes(2));
        output.WriteLine($"c declared dead {clock.Elapsed.TotalSeconds:F1} s after it was killed");
        Assert.Equal(["a", "b"], survivors);
        await TransportChecks.RelayIntactAsync(connection.Client, "a", "b", 8 << 20);
        await TransportChecks.RelayIntactAsync(connection.Client, "b", "a", 8 << 20);
    }
}

/// <summary>A silo process stopped as a service manager stops it: its graceful shutdown closes every connection and ends.</summary>
public sealed class StoppedSiloTransportTests(BenchmarkCluster cluster, ITestOutputHelper output) : IClassFixture<BenchmarkCluster>
{
    /// <summary>
    /// Under the host's 30 s shutdown timeout, where a shutdown that waited for a connection that never reported
    /// itself closed would be cut off: a clean stop ends well before.
    /// </summary>
    private static readonly TimeSpan CleanStopBound = TimeSpan.FromSeconds(25);

    [Fact]
    public async Task A_silo_stopped_with_SIGTERM_closes_its_connections_exits_promptly_and_leaves_the_others_working()
    {
        if (!OperatingSystem.IsLinux()) return; // SIGTERM through kill(1)
        await using var connection = await cluster.ConnectClientAsync("a");
        await TransportChecks.RelayIntactAsync(connection.Client, "a", "c", 1 << 20);
        await TransportChecks.RelayIntactAsync(connection.Client, "c", "b", 1 << 20);
        var silo = cluster.Nodes["c"].Process;

        var clock = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-TERM", silo.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            await kill.WaitForExitAsync();
        int code = await silo.Exited.WaitAsync(TimeSpan.FromMinutes(1));

        output.WriteLine($"c stopped in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(0, code);
        Assert.True(clock.Elapsed < CleanStopBound, $"c took {clock.Elapsed.TotalSeconds:F1} s to stop:{Environment.NewLine}{silo.Output}");
        // The transport logs at warning level only what it did not expect.
        Assert.DoesNotContain("FtpCluster.Transport", silo.Output, StringComparison.Ordinal);
        Assert.Equal(["a", "b"], await TransportChecks.WaitUntilGoneAsync(connection.Client, "c", TimeSpan.FromSeconds(30)));
        await TransportChecks.RelayIntactAsync(connection.Client, "b", "a", 8 << 20);
    }
}
