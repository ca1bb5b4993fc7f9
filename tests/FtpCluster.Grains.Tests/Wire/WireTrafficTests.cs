using FtpCluster.Grains.Wire;

namespace FtpCluster.Grains.Tests.Wire;

public sealed class WireTrafficTests
{
    [Fact]
    public void Counts_every_packet_when_many_threads_record_at_once()
    {
        const int threads = 8, packetsPerThread = 5000;
        var traffic = new WireTraffic();
        using var start = new Barrier(threads);
        // Thread t sends packets of t + 1 bytes across boundary (t mod 3) → (t mod 3) + 1.
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < packetsPerThread; i++)
                traffic.Record(t % 3, t % 3 + 1, t + 1);
        })).ToArray();
        foreach (var worker in workers) worker.Start();
        foreach (var worker in workers) worker.Join();

        var expected = Enumerable.Range(0, threads)
            .GroupBy(t => t % 3)
            .Select(g => new BoundaryTraffic(g.Key, g.Key + 1, (long)g.Count() * packetsPerThread, g.Sum(t => (long)(t + 1)) * packetsPerThread))
            .OrderBy(b => b.SourceStage);
        Assert.Equal(expected, traffic.Snapshot());
    }

    [Fact]
    public void Snapshot_orders_boundaries_and_reset_starts_from_zero()
    {
        var traffic = new WireTraffic();
        traffic.Record(2, 3, 100);
        traffic.Record(0, 1, 10);
        traffic.Record(0, 2, 1);
        traffic.Record(0, 1, 5);

        Assert.Equal([new(0, 1, 2, 15), new(0, 2, 1, 1), new(2, 3, 1, 100)], traffic.Snapshot());

        traffic.Reset();
        Assert.Empty(traffic.Snapshot());
        traffic.Record(0, 1, 7);
        Assert.Equal([new BoundaryTraffic(0, 1, 1, 7)], traffic.Snapshot());
    }
}
