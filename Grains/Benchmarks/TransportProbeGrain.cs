using System.Diagnostics;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Transport;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Placement;
using Orleans.Concurrency;
using Orleans.Placement;

namespace FtpCluster.Grains.Benchmarks;

/// <remarks>
/// Not reentrant: measurements on one probe run one after another, never on top of each other. Each
/// packet travels as a <see cref="StepRequest"/>, the message stages send each other, so it takes the
/// same serialization path (an immutable message: Orleans serializes the bytes once, without a copy
/// at the call site).
/// </remarks>
[NodePinnedPlacement, Immovable]
internal sealed class TransportProbeGrain(FtpClusterSiloOptions options, TcpTransportStatistics transport) : Grain, ITransportProbeGrain
{
    private const double WarmupFraction = 0.1;

    /// <summary>A probe sends whatever it is asked to, as fast as it can: not a thing for any caller of a production silo.</summary>
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        BenchmarkGrains.EnsureOn(options);
        return base.OnActivateAsync(cancellationToken);
    }

    public async Task<TransportMeasurement> Measure(TransportProbeRequest request)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(request.PacketBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(request.InFlight);
        if (!(request.Seconds > 0)) throw new ArgumentOutOfRangeException(nameof(request), $"seconds must be positive, got {request.Seconds}");
        var sink = RemoteSink(request.SinkKey);
        // One packet per lane: a lane sends its next packet only once the last one is acknowledged, so
        // no packet is changed while Orleans may still be serializing it.
        var steps = Enumerable.Range(0, request.InFlight).Select(lane => Step(lane, request.PacketBytes)).ToArray();

        var warmup = await Send(sink, steps, TimeSpan.FromSeconds(request.Seconds * WarmupFraction));
        var receiverBefore = await sink.Totals();
        var senderBefore = Environment.CpuUsage.TotalTime;
        var senderTransportBefore = transport.Snapshot();
        var timed = await Send(sink, steps, TimeSpan.FromSeconds(request.Seconds));
        var senderCpu = Environment.CpuUsage.TotalTime - senderBefore;
        var senderTransport = transport.Snapshot().Since(senderTransportBefore);
        var receiverAfter = await sink.Totals();

        var latencies = timed.Latencies.Order().ToArray();
        double Percentile(double p) => latencies[(int)Math.Min(latencies.Length - 1, Math.Floor(p * latencies.Length))];
        return new TransportMeasurement(options.NodeName, Environment.ProcessId, request.PacketBytes, request.InFlight,
            warmup.Latencies.Count, latencies.Length, timed.Seconds, Percentile(0.5), Percentile(0.9), latencies[^1],
            senderCpu.TotalSeconds, receiverAfter.ProcessCpuSeconds - receiverBefore.ProcessCpuSeconds,
            senderTransport, receiverAfter.Transport.Since(receiverBefore.Transport));
    }

    public Task<StepRequest> Relay(string sinkKey, StepRequest step) => RemoteSink(sinkKey).Echo(step);

    private ITransportSinkGrain RemoteSink(string sinkKey)
    {
        if (NodePinnedKey.NodeOf(sinkKey) == options.NodeName)
            throw new ArgumentException($"the sink {sinkKey} is on this probe's own node {options.NodeName}: nothing would cross the network");
        return GrainFactory.GetGrain<ITransportSinkGrain>(sinkKey);
    }

    /// <summary>
    /// Every lane sends, awaits the acknowledgement and sends again until <paramref name="duration"/> has
    /// passed (each lane sends at least once); the time is until the last acknowledgement arrived.
    /// </summary>
    private static async Task<(List<double> Latencies, double Seconds)> Send(ITransportSinkGrain sink, StepRequest[] steps, TimeSpan duration)
    {
        var latencies = new List<double>();
        var clock = Stopwatch.StartNew();
        async Task Lane(StepRequest step)
        {
            do
            {
                long start = Stopwatch.GetTimestamp();
                int received = await sink.Receive(step);
                // Lanes run as turns of this grain, one at a time: the shared list needs no lock.
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                if (received != step.Packet!.Length)
                    throw new InvalidOperationException($"the sink received {received} bytes of a {step.Packet.Length}-byte packet");
            }
            while (clock.Elapsed < duration);
        }
        await Task.WhenAll(steps.Select(Lane));
        return (latencies, clock.Elapsed.TotalSeconds);
    }

    /// <summary>A step whose packet is pseudo-random bytes (nothing on the path can shortcut zeros).</summary>
    private static StepRequest Step(int lane, int packetBytes)
    {
        var packet = new byte[packetBytes];
        new Random(lane + 1).NextBytes(packet);
        return new StepRequest(MicrobatchId: lane, SequenceIds: null, Positions: null, Tokens: null, Packet: packet, Samples: [], ReturnLogits: false);
    }
}

/// <remarks>Reentrant like a stage, so packets in flight are taken as they arrive.</remarks>
[NodePinnedPlacement, Immovable, Reentrant]
internal sealed class TransportSinkGrain(FtpClusterSiloOptions options, TcpTransportStatistics transport) : Grain, ITransportSinkGrain
{
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        BenchmarkGrains.EnsureOn(options);
        return base.OnActivateAsync(cancellationToken);
    }

    private long _packets;
    private long _bytes;

    public Task<int> Receive(StepRequest step)
    {
        int length = step.Packet?.Length ?? throw new ArgumentException("a transport step carries a packet");
        _packets++;
        _bytes += length;
        return Task.FromResult(length);
    }

    public Task<StepRequest> Echo(StepRequest step) => Task.FromResult(step);

    public Task<TransportSinkTotals> Totals() =>
        Task.FromResult(new TransportSinkTotals(options.NodeName, Environment.ProcessId, _packets, _bytes, Environment.CpuUsage.TotalTime.TotalSeconds,
            transport.Snapshot()));
}

/// <summary>Benchmark grains activate only on silos started with <c>--benchmark-grains</c>.</summary>
internal static class BenchmarkGrains
{
    public static void EnsureOn(FtpClusterSiloOptions options)
    {
        if (!options.BenchmarkGrains)
            throw new InvalidOperationException(
                $"benchmark grains are off on silo {options.NodeName}: start it with --benchmark-grains to measure its transport");
    }
}
