using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using FtpCluster.Grains.Hosting.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.Networking.Shared;

namespace FtpCluster.Grains.Tests.Transport;

/// <summary>
/// The TCP transport's connections on loopback, without Orleans: what they carry, and how each way a connection
/// can end reaches the other end as Orleans expects (its input completes and <c>ConnectionClosed</c> fires).
/// </summary>
public sealed class TcpConnectionTests : IAsyncLifetime
{
    /// <summary>A bound on every wait, never a delay: each wait ends as soon as what it waits for happens.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly TcpTransportStatistics _clientStatistics = new();
    private readonly TcpTransportStatistics _serverStatistics = new();
    private TcpConnectionListener _listener = null!;

    public Task InitializeAsync()
    {
        _listener = TcpConnectionListener.Bind(new IPEndPoint(IPAddress.Loopback, 0), new TcpTransportOptions(), _serverStatistics, NullLogger.Instance);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _listener.DisposeAsync();

    private TcpConnectionFactory Factory() =>
        new(Options.Create(new TcpTransportOptions()), _clientStatistics, NullLoggerFactory.Instance);

    /// <summary>A connection through the factory and the one the listener accepted for it.</summary>
    private async Task<(ConnectionContext Client, ConnectionContext Server)> ConnectAsync()
    {
        var accepting = _listener.AcceptAsync().AsTask();
        var client = await Factory().ConnectAsync(_listener.EndPoint).AsTask().WaitAsync(Bound);
        var server = await accepting.WaitAsync(Bound) ?? throw new InvalidOperationException("the listener accepted nothing");
        return (client, server);
    }

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Writes <paramref name="data"/> in pieces of the given sizes (cycled), flushing each, as Orleans writes messages.</summary>
    private static async Task WriteInPiecesAsync(PipeWriter output, byte[] data, int[] pieces)
    {
        for (int offset = 0, i = 0; offset < data.Length; i++)
        {
            int length = Math.Min(pieces[i % pieces.Length], data.Length - offset);
            data.AsSpan(offset, length).CopyTo(output.GetSpan(length));
            output.Advance(length);
            await output.FlushAsync();
            offset += length;
        }
    }

    private static async Task<byte[]> ReadExactlyAsync(PipeReader input, int count)
    {
        var received = new byte[count];
        int got = 0;
        while (got < count)
        {
            var result = await input.ReadAsync();
            var buffer = result.Buffer;
            int take = (int)Math.Min(buffer.Length, count - got);
            buffer.Slice(0, take).CopyTo(received.AsSpan(got));
            got += take;
            input.AdvanceTo(buffer.GetPosition(take));
            if (got < count && result.IsCompleted)
                throw new InvalidOperationException($"the stream ended after {got} of {count} bytes");
        }
        return received;
    }

    /// <summary>Reads until the input ends; answers how (completed, or the exception it completed with).</summary>
    private static async Task<Exception?> ReadToEndAsync(PipeReader input)
    {
        try
        {
            while (true)
            {
                var result = await input.ReadAsync();
                input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted) return null;
            }
        }
        catch (Exception e)
        {
            return e;
        }
    }

    private static Task Closed(ConnectionContext connection)
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.ConnectionClosed.Register(() => closed.TrySetResult());
        return closed.Task;
    }

    [Fact]
    public async Task Megabytes_written_on_both_sides_at_once_arrive_whole_and_in_order_in_large_reads()
    {
        var (client, server) = await ConnectAsync();
        await using var clientLifetime = client;
        await using var serverLifetime = server;
        byte[] up = RandomBytes((12 << 20) + 7, seed: 1);
        byte[] down = RandomBytes((5 << 20) + 3, seed: 2);

        // Pieces as Orleans writes them: headers and acknowledgements of a few bytes, packets of megabytes.
        var writes = Task.WhenAll(
            WriteInPiecesAsync(client.Transport.Output, up, [1, 100, 3 << 20, 4096, 1 << 20]),
            WriteInPiecesAsync(server.Transport.Output, down, [2 << 20, 17, 65536]));
        var reads = Task.WhenAll(ReadExactlyAsync(server.Transport.Input, up.Length), ReadExactlyAsync(client.Transport.Input, down.Length));
        await writes.WaitAsync(Bound);
        var received = await reads.WaitAsync(Bound);

        Assert.True(up.AsSpan().SequenceEqual(received[0]), "the client's bytes arrived changed");
        Assert.True(down.AsSpan().SequenceEqual(received[1]), "the server's bytes arrived changed");
        var serverTotals = _serverStatistics.Snapshot();
        Assert.Equal(up.Length, serverTotals.ReceivedBytes);
        Assert.Equal(down.Length, serverTotals.SentBytes);
        Assert.Equal((1, 1), (_clientStatistics.Snapshot().Connections, serverTotals.Connections));
        // Orleans' own transport reads 4 KiB at a time; these reads take whatever has arrived, up to 512 KiB.
        double meanRead = (double)serverTotals.ReceivedBytes / serverTotals.ReceiveCalls;
        Assert.True(meanRead > 16 << 10, $"{serverTotals.ReceiveCalls} receive calls for {serverTotals.ReceivedBytes} bytes: {meanRead:F0} bytes per read");
    }

    [Fact]
    public async Task Aborting_one_end_ends_the_other_end_s_input_and_fires_both_ends_ConnectionClosed()
    {
        var (client, server) = await ConnectAsync();
        var clientClosed = Closed(client);
        var serverClosed = Closed(server);

        server.Abort(new ConnectionAbortedException("test"));

        await Task.WhenAll(clientClosed, serverClosed).WaitAsync(Bound);
        // The client's input ends, at end of stream or with the reset (Orleans' reader stops either way).
        var ending = await ReadToEndAsync(client.Transport.Input).WaitAsync(Bound);
        Assert.True(ending is null or ConnectionResetException, $"the client's input ended with {ending}");
        // The server's own input ends with the reason it was aborted for.
        var serverEnding = await ReadToEndAsync(server.Transport.Input).WaitAsync(Bound);
        Assert.Equal("test", Assert.IsType<ConnectionAbortedException>(serverEnding).Message);
        await client.DisposeAsync().AsTask().WaitAsync(Bound);
        await server.DisposeAsync().AsTask().WaitAsync(Bound);
    }

    [Theory]
    [InlineData(false)] // the peer's process exits: its kernel ends the stream
    [InlineData(true)]  // the peer resets the connection (linger 0, as a killed Orleans silo's sockets do)
    public async Task A_peer_that_goes_away_without_a_word_is_reported_as_closed(bool reset)
    {
        var accepting = _listener.AcceptAsync().AsTask();
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await peer.ConnectAsync(_listener.EndPoint);
        await using var server = await accepting.WaitAsync(Bound) ?? throw new InvalidOperationException("the listener accepted nothing");
        var closed = Closed(server);
        await peer.SendAsync(new byte[] { 1, 2, 3 });
        Assert.Equal([1, 2, 3], await ReadExactlyAsync(server.Transport.Input, 3).WaitAsync(Bound));

        if (reset) peer.LingerState = new LingerOption(true, 0);
        peer.Close();

        await closed.WaitAsync(Bound);
        var ending = await ReadToEndAsync(server.Transport.Input).WaitAsync(Bound);
        if (reset) Assert.True(ending is null or ConnectionResetException, $"the input ended with {ending}");
        else Assert.Null(ending);
    }

    [Fact]
    public async Task Completing_the_output_sends_what_was_written_then_closes_the_connection_as_Orleans_transport_does()
    {
        var (client, server) = await ConnectAsync();
        await using var clientLifetime = client;
        await using var serverLifetime = server;
        var clientClosed = Closed(client);
        var serverClosed = Closed(server);
        byte[] last = RandomBytes(64 << 10, seed: 3);

        await WriteInPiecesAsync(server.Transport.Output, last, [last.Length]);
        byte[] received = await ReadExactlyAsync(client.Transport.Input, last.Length).WaitAsync(Bound);
        Assert.True(last.AsSpan().SequenceEqual(received));
        await server.Transport.Output.CompleteAsync();

        // No half-close: the server's connection ends as a whole, and the client sees it end.
        await Task.WhenAll(clientClosed, serverClosed).WaitAsync(Bound);
        var ending = await ReadToEndAsync(client.Transport.Input).WaitAsync(Bound);
        Assert.True(ending is null or ConnectionResetException, $"the client's input ended with {ending}");
    }

    [Fact]
    public async Task Disposing_open_connections_closes_them_without_hanging()
    {
        var (client, server) = await ConnectAsync();
        var clientClosed = Closed(client);
        var serverClosed = Closed(server);
        // A read in progress, as Orleans' reader always has one.
        var pendingRead = client.Transport.Input.ReadAsync().AsTask();

        await client.DisposeAsync().AsTask().WaitAsync(Bound);
        await server.DisposeAsync().AsTask().WaitAsync(Bound);

        Assert.True(clientClosed.IsCompleted && serverClosed.IsCompleted, "disposed before ConnectionClosed fired");
        // The read pending when the connection was disposed has ended too (how is the pipe's business).
        var ended = await Record.ExceptionAsync(() => pendingRead.WaitAsync(Bound));
        Assert.IsNotType<TimeoutException>(ended);
    }

    [Fact]
    public async Task Unbinding_the_listener_ends_a_pending_accept_with_null()
    {
        var accepting = _listener.AcceptAsync().AsTask();

        await _listener.UnbindAsync();

        Assert.Null(await accepting.WaitAsync(Bound));
    }

    [Fact]
    public async Task A_refused_connection_fails_with_Orleans_socket_connection_exception()
    {
        var endpoint = _listener.EndPoint;
        await _listener.UnbindAsync(); // nothing listens on the port now

        var error = await Assert.ThrowsAsync<SocketConnectionException>(() => Factory().ConnectAsync(endpoint).AsTask().WaitAsync(Bound));

        Assert.Contains($"Unable to connect to {endpoint}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connect_cancelled_by_Orleans_timeout_is_cancelled()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Factory().ConnectAsync(_listener.EndPoint, cancelled.Token).AsTask());
    }
}
