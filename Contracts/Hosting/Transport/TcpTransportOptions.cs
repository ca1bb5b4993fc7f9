namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>
/// Settings of FtpCluster's TCP transport (<see cref="TcpConnection"/>), which every FtpCluster silo and client
/// uses in place of Orleans' own socket transport (<see cref="TcpTransportRegistration"/>). The defaults are
/// what every silo and client runs with; the keep-alive settings are Orleans' own defaults.
/// </summary>
public sealed class TcpTransportOptions
{
    /// <summary>
    /// The default of <see cref="ReceiveSegmentBytes"/>: 512 KiB. Measured (docs/benchmarks.md): 256 KiB to 1 MiB
    /// carry the same within the noise of a shared machine, 64 KiB clearly less.
    /// </summary>
    public const int DefaultReceiveSegmentBytes = 512 << 10;

    /// <summary>The default of <see cref="SendSegmentBytes"/>: 64 KiB.</summary>
    public const int DefaultSendSegmentBytes = 64 << 10;

    /// <summary>
    /// The size of the buffers the connection receives into (the minimum segment size of its input pipe),
    /// and so the most one receive call can take from the socket. Each receive gets at least half of this:
    /// the rest of the current buffer when that is half of it or more, a fresh buffer otherwise. Orleans'
    /// own transport receives into 4 KiB blocks, which costs an 8 MiB message 2,048 receive calls and as
    /// many wake-ups of the message reader. Default <see cref="DefaultReceiveSegmentBytes"/>; a connection
    /// keeps one such buffer while it waits for data.
    /// </summary>
    public int ReceiveSegmentBytes { get; set; } = DefaultReceiveSegmentBytes;

    /// <summary>
    /// The minimum segment size of the output pipe Orleans serializes messages into: small messages share
    /// a segment, and the send loop hands the socket up to <see cref="MaxGatherSegments"/> segments per
    /// call. A connection that sends larger messages gets buffers sized to hold one whole (see
    /// <see cref="LargestSendBufferBytes"/>). Default <see cref="DefaultSendSegmentBytes"/>.
    /// </summary>
    public int SendSegmentBytes { get; set; } = DefaultSendSegmentBytes;

    /// <summary>
    /// The largest message size a connection learns to size its send buffers for: a connection that has sent a
    /// message larger than <see cref="SendSegmentBytes"/> asks its output pipe for buffers that hold one such
    /// message whole, so Orleans serializes it straight into the buffer the socket sends from (one copy less than
    /// with small buffers: <see cref="MessageSizedPipeWriter"/>). Default 128 MiB, above Orleans' 100 MiB
    /// message limit, so every message FtpCluster may send is covered.
    /// </summary>
    public int LargestSendBufferBytes { get; set; } = 128 << 20;

    /// <summary>The most pipe segments one send call passes to the socket (a gather send). Default 64.</summary>
    public int MaxGatherSegments { get; set; } = 64;

    /// <summary>Disables Nagle's algorithm, so a small message (an acknowledgement) leaves at once. Default true.</summary>
    public bool NoDelay { get; set; } = true;

    /// <summary>TCP keep-alive probes on idle connections (Orleans' default). Default true.</summary>
    public bool KeepAlive { get; set; } = true;

    /// <summary>Idle seconds before the first keep-alive probe. Default 90 (Orleans' default).</summary>
    public int KeepAliveTimeSeconds { get; set; } = 90;

    /// <summary>Seconds between unanswered keep-alive probes. Default 30 (Orleans' default).</summary>
    public int KeepAliveIntervalSeconds { get; set; } = 30;

    /// <summary>Unanswered keep-alive probes before the kernel drops the connection. Default 10 (Orleans' default).</summary>
    public int KeepAliveRetryCount { get; set; } = 10;

    /// <summary>The listening sockets' backlog of connections not accepted yet. Default 512 (Orleans' value).</summary>
    public int ListenBacklog { get; set; } = 512;

    /// <summary>
    /// Connections a listener keeps open from one remote IP address; one more is closed as soon as it is accepted (and
    /// logged). Default 64: a silo's peers each hold a connection or two, a client one per gateway.
    /// </summary>
    public int MaxConnectionsPerAddress { get; set; } = 64;

    /// <summary>
    /// Connections a listener keeps open in all; one more is closed as soon as it is accepted (and logged). Default 512.
    /// Each open connection holds one receive buffer (<see cref="ReceiveSegmentBytes"/>) while it waits for data, so this
    /// bounds what idle connections can hold: 256 MiB at the defaults.
    /// </summary>
    public int MaxConnections { get; set; } = 512;

    /// <summary>
    /// Bytes a connection holds received and not yet consumed by Orleans; past it the connection reads no more from its
    /// socket until Orleans has taken a message (backpressure: the sender's TCP window closes). Orleans consumes a message
    /// only once it is whole, so this must hold the largest message a peer may send: default 128 MiB, over Orleans' message
    /// body limit (<c>MessageLimits.OrleansMaxMessageBodyBytes</c>, 100 MiB) and its header limit together.
    /// </summary>
    public long MaxBufferedBytesPerConnection { get; set; } = 128L << 20;

    /// <summary>
    /// Bytes a connection may hold written by Orleans and waiting behind the send in progress; past it the peer is not
    /// reading what it asked for, and the connection is closed (a peer cannot make a silo hold its replies without bound).
    /// It must hold the largest message this process sends and what queues behind it while a healthy peer reads: default
    /// 256 MiB, twice <see cref="LargestSendBufferBytes"/>.
    /// </summary>
    public long MaxUnsentBytesPerConnection { get; set; } = 256L << 20;

    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate()
    {
        if (ReceiveSegmentBytes is < 4096 or > 64 << 20)
            throw new ArgumentException($"{nameof(ReceiveSegmentBytes)} must be between 4 KiB and 64 MiB, got {ReceiveSegmentBytes}");
        if (SendSegmentBytes is < 4096 or > 64 << 20)
            throw new ArgumentException($"{nameof(SendSegmentBytes)} must be between 4 KiB and 64 MiB, got {SendSegmentBytes}");
        if (LargestSendBufferBytes < SendSegmentBytes || LargestSendBufferBytes > 1 << 30)
            throw new ArgumentException($"{nameof(LargestSendBufferBytes)} must be between {nameof(SendSegmentBytes)} ({SendSegmentBytes}) and 1 GiB, got {LargestSendBufferBytes}");
        if (MaxGatherSegments is < 1 or > 1024)
            throw new ArgumentException($"{nameof(MaxGatherSegments)} must be between 1 and 1024 (the kernel's iovec limit), got {MaxGatherSegments}");
        if (KeepAlive && (KeepAliveTimeSeconds <= 0 || KeepAliveIntervalSeconds <= 0 || KeepAliveRetryCount <= 0))
            throw new ArgumentException(
                $"keep-alive time, interval and retry count must be positive, got {KeepAliveTimeSeconds} s, {KeepAliveIntervalSeconds} s, {KeepAliveRetryCount}");
        if (MaxConnectionsPerAddress < 1 || MaxConnections < MaxConnectionsPerAddress)
            throw new ArgumentException(
                $"{nameof(MaxConnectionsPerAddress)} must be at least 1 and {nameof(MaxConnections)} at least that, got {MaxConnectionsPerAddress} and {MaxConnections}");
        if (MaxUnsentBytesPerConnection < LargestSendBufferBytes)
            throw new ArgumentException(
                $"{nameof(MaxUnsentBytesPerConnection)} must hold the largest message sent ({nameof(LargestSendBufferBytes)}, {LargestSendBufferBytes} bytes), got {MaxUnsentBytesPerConnection}");
        if (MaxBufferedBytesPerConnection < 2L * ReceiveSegmentBytes)
            throw new ArgumentException(
                $"{nameof(MaxBufferedBytesPerConnection)} must be at least two receive segments ({2L * ReceiveSegmentBytes} bytes), got {MaxBufferedBytesPerConnection}");
        if (ListenBacklog <= 0)
            throw new ArgumentException($"{nameof(ListenBacklog)} must be positive, got {ListenBacklog}");
    }
}
