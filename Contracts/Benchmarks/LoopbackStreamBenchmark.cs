using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace FtpCluster.Grains.Benchmarks;

/// <summary>
/// The machine's own loopback TCP throughput, measured beside the transport benchmark so that its figures
/// have a ceiling taken under the same load: one thread streams 8 MiB writes through a loopback
/// connection, another reads them with a buffer of a given size. Orleans 10's own socket transport reads at
/// most 4 KiB per receive call (the blocks of its pipes' memory pool), which capped a boundary at the 4 KiB
/// figure; FtpCluster's transport (<see cref="Hosting.Transport.TcpConnection"/>) reads up to 512 KiB, so the
/// larger read is now the nearer ceiling.
/// </summary>
public static class LoopbackStreamBenchmark
{
    /// <summary>The receive size of Orleans' own socket transport: one block of its slab memory pool.</summary>
    public const int OrleansReadBytes = 4 << 10;

    private const int WriteBytes = 8 << 20;

    /// <summary>Bytes per second received through loopback TCP, reading <paramref name="readBytes"/> at a time.</summary>
    public static double BytesPerSecond(int readBytes, TimeSpan duration)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(readBytes);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var sending = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        sending.Connect(listener.LocalEndPoint!);
        using var receiving = listener.Accept();

        var writer = new Thread(() =>
        {
            var data = new byte[WriteBytes];
            new Random(1).NextBytes(data);
            var sendClock = Stopwatch.StartNew();
            while (sendClock.Elapsed < duration) sending.Send(data);
            sending.Shutdown(SocketShutdown.Send);
        }) { IsBackground = true, Name = "loopback benchmark writer" };

        var buffer = new byte[readBytes];
        long received = 0;
        var clock = Stopwatch.StartNew();
        writer.Start();
        for (int n; (n = receiving.Receive(buffer)) > 0;) received += n;
        double seconds = clock.Elapsed.TotalSeconds;
        writer.Join();
        return received / seconds;
    }
}
