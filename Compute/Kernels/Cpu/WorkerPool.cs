namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>Runs loop bodies on a fixed set of threads.</summary>
public sealed class WorkerPool : IDisposable
{
    public WorkerPool(int threads)
    {
        Threads = Math.Max(1, threads);
    }

    public int Threads { get; }

    /// <summary>Calls body(i) for i in [0, count), spread over the pool's threads; returns when all are done.</summary>
    public void For(int count, Action<int> body)
    {
        if (Threads == 1 || count == 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Threads }, body);
    }

    public void Dispose()
    {
    }
}
