using FtpCluster.Compute.Kernels.Cpu;
using Xunit;

namespace FtpCluster.Compute.Tests.Kernels;

public sealed class WorkerPoolTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    public void Every_index_runs_exactly_once(int threads)
    {
        using var pool = new WorkerPool(threads);
        foreach (int count in new[] { 0, 1, 2, 3, 17, 1000, 100_000 })
        {
            var hits = new int[count];
            pool.For(count, i => Interlocked.Increment(ref hits[i]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void Struct_bodies_run_every_index_once()
    {
        using var pool = new WorkerPool(3);
        var hits = new int[999];
        pool.For(hits.Length, new CountingBody(hits));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void A_body_exception_reaches_the_caller_and_the_pool_still_works()
    {
        using var pool = new WorkerPool(3);
        for (int round = 0; round < 20; round++)
        {
            int bad = round * 7 % 50;
            var e = Assert.Throws<InvalidOperationException>(() => pool.For(50, i =>
            {
                if (i == bad)
                    throw new InvalidOperationException($"index {i}");
            }));
            Assert.Equal($"index {bad}", e.Message);

            var hits = new int[50];
            pool.For(hits.Length, i => Interlocked.Increment(ref hits[i]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void Many_tiny_calls_each_complete_before_returning()
    {
        using var pool = new WorkerPool(2);
        var slots = new long[2];
        for (int call = 1; call <= 20_000; call++)
        {
            pool.For(2, i => slots[i] = call);
            // Both indices of this call, not an older one, must have run by now.
            Assert.Equal(call, slots[0]);
            Assert.Equal(call, slots[1]);
        }
    }

    [Fact]
    public void Sleeping_workers_wake_and_take_part()
    {
        // Spin for zero time, so the worker is blocked when each call arrives; both indices must run at
        // once (the barrier needs two threads), so the worker has to wake up.
        using var pool = new WorkerPool(2, TimeSpan.Zero);
        using var barrier = new Barrier(2);
        for (int round = 0; round < 5; round++)
        {
            Thread.Sleep(5);
            pool.For(2, _ => Assert.True(barrier.SignalAndWait(TimeSpan.FromSeconds(10)), "the worker never joined"));
        }
    }

    [Fact]
    public void Nested_and_concurrent_calls_run_inline_instead_of_deadlocking()
    {
        using var pool = new WorkerPool(2);
        var hits = new int[8 * 8];
        pool.For(8, i => pool.For(8, j => Interlocked.Increment(ref hits[i * 8 + j])));
        Assert.All(hits, h => Assert.Equal(1, h));

        var totals = new long[4];
        Parallel.For(0, totals.Length, t =>
        {
            for (int call = 0; call < 200; call++)
                pool.For(10, i => Interlocked.Add(ref totals[t], i));
        });
        Assert.All(totals, s => Assert.Equal(200 * 45, s));
    }

    [Fact]
    public void Dispose_stops_the_pool()
    {
        var pool = new WorkerPool(4);
        pool.For(8, _ => { });
        pool.Dispose();
        pool.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pool.For(8, _ => { }));
    }

    private readonly struct CountingBody(int[] hits) : IForBody
    {
        public void Invoke(int index) => Interlocked.Increment(ref hits[index]);
    }
}
