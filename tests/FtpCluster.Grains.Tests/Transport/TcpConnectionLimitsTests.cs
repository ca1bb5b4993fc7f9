using System.Net;
using System.Net.Sockets;
using FtpCluster.Grains.Hosting.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;

namespace FtpCluster.Grains.Tests.Transport;

/// <summary>
/// The listener's connection limits (per remote address and in all) and a connection's bound on bytes received and not
/// consumed: refusals and backpressure, never growth.
/// </summary>
public sealed class TcpConnectionLimitsTests
{
    /// <summary>A bound on every wait, never a delay: each wait ends as soon as what it waits for happens.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>A socket connected to <paramref name="listener"/> from <paramref name="source"/> (any 127.x.y.z is loopback on Linux).</summary>
    private static async Task<Socket> ConnectFromAsync(TcpConnectionListener listener, string source)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
        await socket.ConnectAsync(listener.EndPoint).WaitAsync(Bound);
        return socket;
    }

    /// <summary>A listener on a loopback port, a client socket connected to it, and the connection the listener accepted.</summary>
    private sealed class ConnectedPair(TcpConnectionListener listener, Socket client, ConnectionContext server) : IAsyncDisposable
    {
        public Socket Client => client;
        public ConnectionContext Server => server;

        public static async Task<ConnectedPair> OpenAsync(TcpTransportOptions options, TcpTransportStatistics statistics)
        {
            var listener = TcpConnectionListener.Bind(new IPEndPoint(IPAddress.Loopback, 0), options, statistics, NullLogger.Instance);
            var accepting = listener.AcceptAsync().AsTask();
            var client = await ConnectFromAsync(listener, "127.0.0.1");
            var server = await accepting.WaitAsync(Bound) ?? throw new InvalidOperationException("accepted nothing");
            return new ConnectedPair(listener, client, server);
        }

        public async ValueTask DisposeAsync()
        {
            client.Dispose();
            await server.DisposeAsync();
            await listener.DisposeAsync();
        }
    }

    /// <summary>Whether the server closed <paramref name="socket"/> (end of stream or reset) within the bound; null: reset while it connected.</summary>
    private static async Task<bool> ClosedByServerAsync(Socket? socket, TimeSpan within)
    {
        if (socket is null) return true;
        try
        {
            return await socket.ReceiveAsync(new byte[1], SocketFlags.None).WaitAsync(within) == 0;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Connections_past_the_per_address_and_total_limits_are_closed_and_a_closed_one_frees_its_place()
    {
        var statistics = new TcpTransportStatistics();
        var options = new TcpTransportOptions { MaxConnectionsPerAddress = 2, MaxConnections = 3 };
        await using var listener = TcpConnectionListener.Bind(new IPEndPoint(IPAddress.Loopback, 0), options, statistics, NullLogger.Instance);
        var accepted = new List<ConnectionContext>();
        var sockets = new List<Socket>();
        try
        {
            async Task<Socket?> Open(string source, bool admitted)
            {
                var accepting = admitted ? listener.AcceptAsync().AsTask() : null;
                Socket socket;
                try
                {
                    socket = await ConnectFromAsync(listener, source);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
                {
                    return null; // refused so fast that the reset beat the connect's completion
                }
                sockets.Add(socket);
                if (accepting is not null) accepted.Add(await accepting.WaitAsync(Bound) ?? throw new InvalidOperationException("accepted nothing"));
                return socket;
            }

            await Open("127.0.0.1", admitted: true);
            await Open("127.0.0.1", admitted: true);
            // The third from the same address: accepted and closed inside the listener's accept, which waits on.
            var pending = listener.AcceptAsync().AsTask();
            var third = await Open("127.0.0.1", admitted: false);
            Assert.True(await ClosedByServerAsync(third, Bound));
            Assert.Equal(1, listener.RefusedConnections);

            // Another address still gets in, up to the total; then nobody does.
            var fourth = await Open("127.0.0.2", admitted: false);
            accepted.Add(await pending.WaitAsync(Bound) ?? throw new InvalidOperationException("accepted nothing"));
            Assert.Equal(3, listener.OpenConnections);
            pending = listener.AcceptAsync().AsTask();
            var fifth = await Open("127.0.0.3", admitted: false);
            Assert.True(await ClosedByServerAsync(fifth, Bound));
            Assert.Equal(2, listener.RefusedConnections);
            Assert.False(await ClosedByServerAsync(fourth, TimeSpan.FromMilliseconds(200)));

            // A connection that ends gives its place back.
            await accepted[0].DisposeAsync();
            accepted.RemoveAt(0);
            while (listener.OpenConnections > 2) await Task.Delay(10).WaitAsync(Bound);
            await Open("127.0.0.1", admitted: false);
            accepted.Add(await pending.WaitAsync(Bound) ?? throw new InvalidOperationException("accepted nothing"));
            Assert.Equal(3, listener.OpenConnections);
            Assert.Equal(2, listener.RefusedConnections);
        }
        finally
        {
            foreach (var socket in sockets) socket.Dispose();
            foreach (var connection in accepted) await connection.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_connection_whose_input_is_not_consumed_stops_reading_at_its_bound_and_goes_on_once_it_is()
    {
        const int bound = 1 << 20;
        const int sent = 32 << 20;
        var statistics = new TcpTransportStatistics();
        var options = new TcpTransportOptions { ReceiveSegmentBytes = 64 << 10, MaxBufferedBytesPerConnection = bound };
        await using var pair = await ConnectedPair.OpenAsync(options, statistics);
        var (client, server) = (pair.Client, pair.Server);

        var data = new byte[sent];
        new Random(7).NextBytes(data);
        var sending = client.SendAsync(data, SocketFlags.None);

        // Nothing consumes the input: the transport reads up to the bound (and one receive past the pause) and no more,
        // while the rest waits in the kernel's buffers and the sender's.
        // Settled: something arrived (on a loaded machine the first read may take longer than one look) and no more comes.
        long before;
        long after = statistics.Snapshot().ReceivedBytes;
        var deadline = DateTime.UtcNow + Bound;
        do
        {
            before = after;
            await Task.Delay(300);
            after = statistics.Snapshot().ReceivedBytes;
        }
        while ((after == 0 || after != before) && DateTime.UtcNow < deadline);
        Assert.InRange(after, bound / 2, bound + options.ReceiveSegmentBytes);
        Assert.False(sending.IsCompleted);

        // Consumed, the rest flows, every byte in order.
        var received = new byte[sent];
        int got = 0;
        while (got < sent)
        {
            var result = await server.Transport.Input.ReadAsync().AsTask().WaitAsync(Bound);
            foreach (var segment in result.Buffer)
            {
                segment.Span.CopyTo(received.AsSpan(got));
                got += segment.Length;
            }
            server.Transport.Input.AdvanceTo(result.Buffer.End);
        }
        Assert.Equal(sent, await sending.WaitAsync(Bound));
        Assert.Equal(data, received);
    }
    /// <summary>Writes 64 KiB chunks into the connection's output until it reports closed or <paramref name="cap"/> bytes; answers the bytes written.</summary>
    private static async Task<long> WriteUntilClosedAsync(ConnectionContext connection, long cap)
    {
        var chunk = new byte[64 << 10];
        long written = 0;
        while (written < cap && !connection.ConnectionClosed.IsCancellationRequested)
        {
            chunk.CopyTo(connection.Transport.Output.GetMemory(chunk.Length));
            connection.Transport.Output.Advance(chunk.Length);
            written += chunk.Length;
            if ((await connection.Transport.Output.FlushAsync().AsTask().WaitAsync(Bound)).IsCompleted) break;
        }
        return written;
    }

    [Fact]
    public async Task A_peer_that_leaves_its_replies_unread_past_the_bound_is_cut_off()
    {
        const long bound = 4 << 20;
        var options = new TcpTransportOptions { LargestSendBufferBytes = 1 << 20, MaxUnsentBytesPerConnection = bound };
        await using var pair = await ConnectedPair.OpenAsync(options, new TcpTransportStatistics());
        var (client, server) = (pair.Client, pair.Server);

        // The client reads nothing: once the kernel's buffers are full, what the server writes stays with it.
        long written = await WriteUntilClosedAsync(server, cap: 512L << 20);

        Assert.True(server.ConnectionClosed.IsCancellationRequested, $"still open after {written} bytes written to a peer that reads none");
        // The kernel's socket buffers on loopback take a few MiB before the bound starts to count.
        Assert.InRange(written, bound, bound + (32 << 20));
        // What reached the client before the close is still in its socket: read through it to the end or the reset.
        var buffer = new byte[1 << 20];
        var closing = Task.Run(async () =>
        {
            try
            {
                while (await client.ReceiveAsync(buffer, SocketFlags.None) > 0)
                {
                }
            }
            catch (SocketException)
            {
            }
        });
        await closing.WaitAsync(Bound);
    }

    [Fact]
    public async Task A_peer_that_reads_keeps_its_connection_however_much_passes_through()
    {
        const long bound = 4 << 20;
        const long total = 64 << 20;
        var options = new TcpTransportOptions { LargestSendBufferBytes = 1 << 20, MaxUnsentBytesPerConnection = bound };
        await using var pair = await ConnectedPair.OpenAsync(options, new TcpTransportStatistics());
        var (client, server) = (pair.Client, pair.Server);
        long read = 0;
        using var progress = new SemaphoreSlim(0);
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[1 << 20];
            int got;
            while (Interlocked.Read(ref read) < total && (got = await client.ReceiveAsync(buffer, SocketFlags.None)) > 0)
            {
                Interlocked.Add(ref read, got);
                progress.Release();
            }
        });

        // The writer stays within half the bound of what the reader has taken, as a peer reading at the pace of its
        // replies keeps it: the bound is on what the peer leaves unread, not on what passes through.
        long written = 0;
        while (written < total)
        {
            while (written - Interlocked.Read(ref read) > bound / 2)
                Assert.True(await progress.WaitAsync(Bound), "the reader stopped");
            written += await WriteUntilClosedAsync(server, cap: 1 << 20);
            Assert.False(server.ConnectionClosed.IsCancellationRequested, $"closed after {written} bytes written");
        }
        await reading.WaitAsync(Bound);
        Assert.Equal(total, Interlocked.Read(ref read));
    }
}
