using System.Diagnostics;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Hosting.Transport;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Placement;
using Orleans.Concurrency;
using Orleans.Placement;

namespace FtpCluster.Grains.Benchmarks;

/// <summary>One transport measurement: packets of <paramref name="PacketBytes"/> to the sink keyed <paramref name="SinkKey"/>.</summary>
/// <param name="SinkKey">A node-pinned <see cref="ITransportSinkGrain"/> key (<c>ID@NODE</c>), on another silo than the probe.</param>
/// <param name="InFlight">Packets outstanding at once, as the pipeline keeps several microbatches in flight.</param>
/// <param name="Seconds">How long the timed part sends; an untimed warm-up of a tenth of that runs first.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.TransportProbeRequest")]
public sealed record TransportProbeRequest(
    [property: Id(0)] string SinkKey,
    [property: Id(1)] int PacketBytes,
    [property: Id(2)] int InFlight,
    [property: Id(3)] double Seconds);

/// <summary>
/// What the sending grain timed itself: <see cref="Packets"/> acknowledged packets of
/// <see cref="PacketBytes"/> in <see cref="Seconds"/>, and the round trip of each (the packet out, a
/// tiny acknowledgement back), warm-up excluded. The CPU time each silo process used meanwhile says what
/// the transport costs whatever else shares the machine: wall-clock figures only hold on an idle one.
/// <see cref="ReceiverTransport"/> and <see cref="SenderTransport"/> are what each silo's TCP transport did
/// meanwhile, all of its connections together (the acknowledgements and the cluster's own traffic too).
/// </summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.TransportMeasurement")]
public sealed record TransportMeasurement(
    [property: Id(0)] string SenderNode,
    [property: Id(1)] int SenderProcessId,
    [property: Id(2)] int PacketBytes,
    [property: Id(3)] int InFlight,
    [property: Id(4)] long WarmupPackets,
    [property: Id(5)] long Packets,
    [property: Id(6)] double Seconds,
    [property: Id(7)] double LatencyP50Milliseconds,
    [property: Id(8)] double LatencyP90Milliseconds,
    [property: Id(9)] double LatencyMaxMilliseconds,
    [property: Id(10)] double SenderCpuSeconds,
    [property: Id(11)] double ReceiverCpuSeconds,
    [property: Id(12)] TcpTransportTotals SenderTransport,
    [property: Id(13)] TcpTransportTotals ReceiverTransport)
{
    /// <summary>Payload bytes delivered in the timed part.</summary>
    public long Bytes => Packets * PacketBytes;

    public double BytesPerSecond => Bytes / Seconds;

    public double PacketsPerSecond => Packets / Seconds;

    /// <summary>CPU seconds both silo processes spent per gigabyte (10^9 bytes) delivered.</summary>
    public double CpuSecondsPerGigabyte => (SenderCpuSeconds + ReceiverCpuSeconds) / (Bytes / 1e9);

    /// <summary>The receiving silo's mean bytes per receive call: how large its reads were.</summary>
    public double ReceiverBytesPerReceive => ReceiverTransport.ReceiveCalls == 0 ? 0 : (double)ReceiverTransport.ReceivedBytes / ReceiverTransport.ReceiveCalls;
}

/// <summary>
/// What a sink has received since it was activated, where it runs, its process's CPU time so far, and its
/// silo's transport totals so far.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.TransportSinkTotals")]
public sealed record TransportSinkTotals(
    [property: Id(0)] string NodeName,
    [property: Id(1)] int ProcessId,
    [property: Id(2)] long Packets,
    [property: Id(3)] long Bytes,
    [property: Id(4)] double ProcessCpuSeconds,
    [property: Id(5)] TcpTransportTotals Transport);

/// <summary>
/// The sending end of a transport measurement, pinned to its node (<c>ID@NODE</c>). It sends packets to
/// a sink on another node and times its own calls, so the figure is silo to silo, as one stage sends to
/// the next, with no client or gateway in the path.
/// </summary>
[Alias("FtpCluster.ITransportProbeGrain")]
public interface ITransportProbeGrain : IGrainWithStringKey
{
    [Alias("Measure")]
    Task<TransportMeasurement> Measure(TransportProbeRequest request);

    /// <summary>
    /// Sends <paramref name="step"/> to the sink keyed <paramref name="sinkKey"/> (on another node) and answers what
    /// the sink sent back: a step that crossed silo to silo both ways, for checking it arrived intact.
    /// </summary>
    [Alias("Relay")]
    Task<StepRequest> Relay(string sinkKey, StepRequest step);
}

/// <summary>The receiving end: takes a packet as a stage takes a step, answers with the byte count it got.</summary>
[Alias("FtpCluster.ITransportSinkGrain")]
public interface ITransportSinkGrain : IGrainWithStringKey
{
    /// <summary>Receives <paramref name="step"/>'s packet; answers its length.</summary>
    [Alias("Receive")]
    Task<int> Receive(StepRequest step);

    [Alias("Totals")]
    Task<TransportSinkTotals> Totals();

    /// <summary>Answers <paramref name="step"/> as it arrived (not counted in <see cref="Totals"/>).</summary>
    [Alias("Echo")]
    Task<StepRequest> Echo(StepRequest step);
}

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
