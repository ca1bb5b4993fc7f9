namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>
/// Running totals of one silo's or client's <see cref="TcpConnection"/>s, all connections together: how many
/// receive and send calls they made and the bytes those moved, so a benchmark can tell how large the reads
/// really were (bytes per receive call) without tracing system calls.
/// </summary>
public sealed class TcpTransportStatistics
{
    private long _connections;
    private long _receiveCalls;
    private long _receivedBytes;
    private long _sendCalls;
    private long _sentBytes;

    /// <summary>A consistent-enough copy of the totals (each read atomically, not all at one instant).</summary>
    public TcpTransportTotals Snapshot() => new(
        Interlocked.Read(ref _connections),
        Interlocked.Read(ref _receiveCalls),
        Interlocked.Read(ref _receivedBytes),
        Interlocked.Read(ref _sendCalls),
        Interlocked.Read(ref _sentBytes));

    internal void ConnectionOpened() => Interlocked.Increment(ref _connections);

    /// <summary>One receive call that returned <paramref name="bytes"/> bytes (0 for the peer's end of stream).</summary>
    internal void Received(int bytes)
    {
        Interlocked.Increment(ref _receiveCalls);
        Interlocked.Add(ref _receivedBytes, bytes);
    }

    /// <summary>One send call (possibly a gather of several buffers) that sent <paramref name="bytes"/> bytes.</summary>
    internal void Sent(int bytes)
    {
        Interlocked.Increment(ref _sendCalls);
        Interlocked.Add(ref _sentBytes, bytes);
    }
}

/// <summary>What <see cref="TcpTransportStatistics"/> had counted at one moment.</summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.TcpTransportTotals")]
public sealed record TcpTransportTotals(
    [property: Id(0)] long Connections,
    [property: Id(1)] long ReceiveCalls,
    [property: Id(2)] long ReceivedBytes,
    [property: Id(3)] long SendCalls,
    [property: Id(4)] long SentBytes)
{
    /// <summary>What happened between <paramref name="earlier"/> and this snapshot.</summary>
    public TcpTransportTotals Since(TcpTransportTotals earlier) => new(
        Connections - earlier.Connections,
        ReceiveCalls - earlier.ReceiveCalls,
        ReceivedBytes - earlier.ReceivedBytes,
        SendCalls - earlier.SendCalls,
        SentBytes - earlier.SentBytes);
}
