using FtpCluster.Grains.Hosting.Transport;

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
