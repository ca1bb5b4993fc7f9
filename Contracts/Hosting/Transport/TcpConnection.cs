using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace FtpCluster.Grains.Hosting.Transport;

/// <summary>
/// One TCP connection as Orleans sees it: a <see cref="ConnectionContext"/> whose <see cref="Transport"/> pipes
/// are fed by a receive loop that reads straight into large pipe buffers (<see cref="TcpTransportOptions.ReceiveSegmentBytes"/>)
/// and drained by a send loop that hands the socket everything Orleans has serialized, several buffers per call.
/// Orleans writes into buffers sized to hold this connection's large messages whole (<see cref="MessageSizedPipeWriter"/>).
/// </summary>
/// <remarks>
/// Lifetime, as Orleans' own socket transport behaves and its <c>Connection</c> expects:
/// <list type="bullet">
/// <item>the peer's end of stream (a killed process's kernel closes its sockets) or a reset completes the input
/// pipe, so Orleans' reader ends, and fires <see cref="ConnectionClosed"/>;</item>
/// <item>Orleans completing the output pipe (its writer is done) closes the socket, both directions: there is no
/// half-close, as in Orleans' transport;</item>
/// <item><see cref="Abort(ConnectionAbortedException)"/> closes the socket at once and stops the send loop; the
/// receive loop then ends and fires <see cref="ConnectionClosed"/>, which Orleans waits for before it disposes;</item>
/// <item><see cref="DisposeAsync"/> closes whatever is still open and returns once both loops have ended and
/// <see cref="ConnectionClosed"/> has fired.</item>
/// </list>
/// Sockets linger 0 on close (a reset instead of a FIN wait, no TIME_WAIT), as Orleans' do.
/// <see cref="ConnectionClosed"/> fires on the thread pool, never inside a loop of this connection.
/// </remarks>
internal sealed class TcpConnection : ConnectionContext,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature,
    IReceivedBytesFeature
{
    private static long s_nextId;

    private readonly Socket _socket;
    private readonly TcpTransportOptions _options;
    private readonly TcpTransportStatistics _statistics;
    private readonly ILogger _logger;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly CancellationTokenSource _closedSource = new();
    private readonly TaskCompletionSource _closedFired = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _closeLock = new();
    private readonly List<ArraySegment<byte>> _gather = [];
    private Task _receiving = Task.CompletedTask;
    private Task _sending = Task.CompletedTask;
    private bool _socketClosed;
    private volatile Exception? _closeReason;
    private int _closedNotified;
    private long _receivedBytes;
    // Written by Orleans and not yet taken by the send loop: what piles up behind a peer that does not read.
    private long _queuedBytes;
    private IDictionary<object, object?> _items = new Dictionary<object, object?>();

    private TcpConnection(Socket socket, TcpTransportOptions options, TcpTransportStatistics statistics, ILogger logger)
    {
        _socket = socket;
        _options = options;
        _statistics = statistics;
        _logger = logger;
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        ConnectionId = $"ftp-tcp-{Interlocked.Increment(ref s_nextId)}";
        ConnectionClosed = _closedSource.Token;

        // The input pauses (the receive loop reads no more) once MaxBufferedBytesPerConnection bytes wait unconsumed. Orleans'
        // reader needs a whole message in the pipe before it consumes anything, so the bound is over the largest message
        // (TcpTransportOptions says why); it resumes once the reader has taken the message and half the bound is free.
        // The output does not pause; a peer that leaves more than MaxUnsentBytesPerConnection unread is cut off instead
        // (UnsentBound), since pausing would only move the pile into Orleans' queue of messages to send.
        // Buffers come from the shared array pool (pool: null), in segments of at least the configured sizes.
        _input = new Pipe(new PipeOptions(pool: null, readerScheduler: PipeScheduler.ThreadPool, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: options.MaxBufferedBytesPerConnection, resumeWriterThreshold: options.MaxBufferedBytesPerConnection / 2,
            minimumSegmentSize: options.ReceiveSegmentBytes, useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(pool: null, readerScheduler: PipeScheduler.ThreadPool, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0, resumeWriterThreshold: 0, minimumSegmentSize: options.SendSegmentBytes, useSynchronizationContext: false));
        Transport = new DuplexPipe(_input.Reader,
            new UnsentBound(new MessageSizedPipeWriter(_output.Writer, options.SendSegmentBytes, options.LargestSendBufferBytes), this));

        var features = new FeatureCollection();
        features.Set<IConnectionIdFeature>(this);
        features.Set<IConnectionTransportFeature>(this);
        features.Set<IConnectionItemsFeature>(this);
        features.Set<IConnectionLifetimeFeature>(this);
        features.Set<IConnectionEndPointFeature>(this);
        features.Set<IReceivedBytesFeature>(this);
        Features = features;
    }

    /// <summary>Wraps a connected socket (configured by the caller) and starts its receive and send loops.</summary>
    public static TcpConnection Start(Socket socket, TcpTransportOptions options, TcpTransportStatistics statistics, ILogger logger)
    {
        var connection = new TcpConnection(socket, options, statistics, logger);
        statistics.ConnectionOpened();
        connection._receiving = connection.ReceiveLoopAsync();
        connection._sending = connection.SendLoopAsync();
        return connection;
    }

    /// <summary>The socket options every connection of this transport gets, on both the connecting and the accepting side.</summary>
    public static void Configure(Socket socket, TcpTransportOptions options)
    {
        socket.NoDelay = options.NoDelay;
        socket.LingerState = new LingerOption(true, 0);
        if (!options.KeepAlive) return;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, options.KeepAliveTimeSeconds);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, options.KeepAliveIntervalSeconds);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, options.KeepAliveRetryCount);
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; }

    public override IDictionary<object, object?> Items
    {
        get => _items;
        set => _items = value;
    }

    public override IDuplexPipe Transport { get; set; }

    public long ReceivedBytes => Interlocked.Read(ref _receivedBytes);

    public override CancellationToken ConnectionClosed { get; set; }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        CloseSocket(abortReason);
        // The send loop may be waiting for output that will never come.
        _output.Reader.CancelPendingRead();
    }

    public override void Abort() => Abort(new ConnectionAbortedException("The connection was aborted by the application."));

    public override async ValueTask DisposeAsync()
    {
        // Orleans disposes a connection after its own loops have completed both pipes and it has aborted the
        // connection; disposing one that is still open closes it first.
        await _input.Reader.CompleteAsync();
        await _output.Writer.CompleteAsync();
        Abort(new ConnectionAbortedException("The connection was disposed."));
        await _receiving;
        await _sending;
        await _closedFired.Task;
        _closedSource.Dispose();
        await base.DisposeAsync();
    }

    public override string ToString() => $"{ConnectionId} {LocalEndPoint} -> {RemoteEndPoint}";

    /// <summary>Socket to input pipe, one large receive at a time, until end of stream, a reset, or close.</summary>
    private async Task ReceiveLoopAsync()
    {
        await Task.Yield();
        var input = _input.Writer;
        int minimumRead = _options.ReceiveSegmentBytes / 2;
        Exception? error = null;
        try
        {
            while (true)
            {
                // No zero-byte wait for data first: the buffer is taken before the data is there, one per connection.
                var buffer = input.GetMemory(minimumRead);
                int received = await _socket.ReceiveAsync(buffer, SocketFlags.None);
                _statistics.Received(received);
                Interlocked.Add(ref _receivedBytes, received);
                if (received == 0)
                {
                    _logger.LogDebug("{Connection}: the peer ended the stream", this);
                    break;
                }
                input.Advance(received);
                var flushed = await input.FlushAsync();
                if (flushed.IsCompleted || flushed.IsCanceled) break; // Orleans' reader is done
            }
        }
        catch (SocketException e) when (IsReset(e.SocketErrorCode))
        {
            error = new ConnectionResetException(e.Message, e);
            _logger.LogDebug("{Connection}: reset by the peer", this);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The socket was closed under the receive (Abort, dispose, or the send loop ending): the close reason says why.
            error = e;
            if (_closeReason is null) _logger.LogWarning(e, "{Connection}: receive failed", this);
        }
        catch (Exception e)
        {
            error = e;
            _logger.LogWarning(e, "{Connection}: unexpected error in the receive loop", this);
        }
        finally
        {
            await input.CompleteAsync(_closeReason ?? error);
            NotifyClosed();
        }
    }

    /// <summary>Output pipe to socket: everything serialized so far, in as few send calls as the gather limit allows.</summary>
    private async Task SendLoopAsync()
    {
        await Task.Yield();
        var output = _output.Reader;
        Exception? error = null;
        bool unexpected = false;
        try
        {
            while (true)
            {
                var result = await output.ReadAsync();
                if (result.IsCanceled) break; // Abort
                var buffer = result.Buffer;
                Interlocked.Add(ref _queuedBytes, -buffer.Length);
                if (!buffer.IsEmpty) await SendAsync(buffer);
                output.AdvanceTo(buffer.End);
                if (result.IsCompleted) break; // Orleans' writer is done
            }
        }
        catch (SocketException e) when (IsReset(e.SocketErrorCode))
        {
            error = new ConnectionResetException(e.Message, e);
            _logger.LogDebug("{Connection}: reset by the peer while sending", this);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            error = e;
        }
        catch (Exception e)
        {
            error = e;
            unexpected = true;
            _logger.LogWarning(e, "{Connection}: unexpected error in the send loop", this);
        }
        finally
        {
            // No half-close: when sending ends, for whatever reason, the connection ends. Closing the socket ends the
            // receive loop, which completes the input and fires ConnectionClosed.
            CloseSocket(error);
            await output.CompleteAsync(unexpected ? error : null);
        }
    }

    private async ValueTask SendAsync(ReadOnlySequence<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int sent = buffer.IsSingleSegment
                ? await _socket.SendAsync(buffer.First, SocketFlags.None)
                : await SendGatherAsync(buffer);
            _statistics.Sent(sent);
            buffer = buffer.Slice(sent);
        }
    }

    /// <summary>
    /// Sends the sequence's first segments (up to <see cref="TcpTransportOptions.MaxGatherSegments"/>) in one call;
    /// answers the bytes sent. A segment that is not an array (never the case with the array pool's buffers) goes alone.
    /// </summary>
    private async ValueTask<int> SendGatherAsync(ReadOnlySequence<byte> buffer)
    {
        _gather.Clear();
        foreach (var segment in buffer)
        {
            if (segment.IsEmpty) continue;
            if (!MemoryMarshal.TryGetArray(segment, out var array))
            {
                if (_gather.Count > 0) break;
                return await _socket.SendAsync(segment, SocketFlags.None);
            }
            _gather.Add(array);
            if (_gather.Count == _options.MaxGatherSegments) break;
        }
        try
        {
            return await _socket.SendAsync(_gather, SocketFlags.None);
        }
        finally
        {
            _gather.Clear();
        }
    }

    /// <summary>Closes the socket once; the first reason given is the one the input pipe completes with.</summary>
    private void CloseSocket(Exception? reason)
    {
        lock (_closeLock)
        {
            if (_socketClosed) return;
            _socketClosed = true;
            _closeReason = reason ?? new ConnectionAbortedException("The connection's sending side completed.");
        }
        _logger.LogDebug("{Connection}: closing ({Reason})", this, _closeReason.Message);
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already reset or closed by the peer: there is nothing left to shut down.
        }
        _socket.Dispose();
    }

    /// <summary>Fires <see cref="ConnectionClosed"/> once, on the thread pool (its callbacks start Orleans' closing).</summary>
    private void NotifyClosed()
    {
        if (Interlocked.Exchange(ref _closedNotified, 1) != 0) return;
        ThreadPool.UnsafeQueueUserWorkItem(static connection =>
        {
            try
            {
                connection._closedSource.Cancel();
            }
            catch (Exception e)
            {
                connection._logger.LogWarning(e, "{Connection}: a ConnectionClosed callback failed", connection);
            }
            connection._closedFired.TrySetResult();
        }, this, preferLocal: false);
    }

    private static bool IsReset(SocketError error) =>
        error is SocketError.ConnectionReset or SocketError.Shutdown
        || (error == SocketError.ConnectionAborted && OperatingSystem.IsWindows())
        || (error == SocketError.ProtocolType && OperatingSystem.IsMacOS());

    IDictionary<object, object?> IConnectionItemsFeature.Items
    {
        get => Items;
        set => Items = value;
    }

    IDuplexPipe IConnectionTransportFeature.Transport
    {
        get => Transport;
        set => Transport = value;
    }

    CancellationToken IConnectionLifetimeFeature.ConnectionClosed
    {
        get => ConnectionClosed;
        set => ConnectionClosed = value;
    }

    void IConnectionLifetimeFeature.Abort() => Abort();

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>
    /// The writer Orleans sees: it counts what is written and, at each flush, closes the connection when more than
    /// <see cref="TcpTransportOptions.MaxUnsentBytesPerConnection"/> of it waits behind the bytes the send loop has taken.
    /// Those are left out: a peer reads them while the send call that holds them is still in progress, so counting them
    /// would make a large send look like a peer that does not read.
    /// </summary>
    private sealed class UnsentBound(PipeWriter inner, TcpConnection connection) : PipeWriter
    {
        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override void Advance(int bytes)
        {
            Interlocked.Add(ref connection._queuedBytes, bytes);
            inner.Advance(bytes);
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            long waiting = Interlocked.Read(ref connection._queuedBytes);
            long limit = connection._options.MaxUnsentBytesPerConnection;
            if (waiting > limit && connection._closeReason is null)
            {
                connection._logger.LogWarning(
                    "{Connection}: the peer is not reading: {Waiting} bytes wait behind the send in progress, over the limit of {Limit}: closing the connection",
                    connection, waiting, limit);
                connection.Abort(new ConnectionAbortedException(
                    $"the peer is not reading: {waiting} bytes wait behind the send in progress, over the limit of {limit} bytes"));
            }
            return inner.FlushAsync(cancellationToken);
        }

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;
    }
}
