using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>A loop body the pool runs without allocating: a struct, so the JIT specialises the call per body type.</summary>
public interface IForBody
{
    void Invoke(int index);
}

/// <summary>
/// Runs loop bodies on dedicated threads plus the calling thread. Idle workers spin for a short while
/// (so the many small fork-joins of a decode step start in well under a microsecond) and then block,
/// so an idle process does not burn a core.
/// </summary>
/// <remarks>
/// Indices are handed out through one 64-bit ticket, (job generation &lt;&lt; 32) | next index, claimed by
/// compare-and-swap. A worker that wakes late can therefore never claim an index of a newer job with
/// the body of an older one, and the caller waits only for the indices, never for a late worker.
/// A call made while the pool is busy (a nested call from a body, or a second caller thread) runs
/// inline on its own thread.
/// </remarks>
public sealed unsafe class WorkerPool : IDisposable
{
    /// <summary>Low half of the ticket while the caller rewrites the job fields: no index can be claimed.</summary>
    private const uint Closed = uint.MaxValue;

    private readonly Thread[] _workers;
    private readonly long _spinTicks;
    private readonly object _gate = new();

    private long _ticket;
    private int _count;
    private void* _body;
    private delegate*<void*, int, void> _invoke;
    private int _done;
    private Exception? _error;
    private int _busy;
    private int _sleepers;
    private volatile bool _disposed;

    /// <param name="threads">Threads that run bodies, the caller included.</param>
    /// <param name="spinBeforeBlocking">How long an idle worker polls for work before it blocks (default 100 µs).</param>
    public WorkerPool(int threads, TimeSpan? spinBeforeBlocking = null)
    {
        Threads = Math.Max(1, threads);
        _spinTicks = (long)((spinBeforeBlocking ?? TimeSpan.FromMicroseconds(100)).TotalSeconds * Stopwatch.Frequency);
        _workers = new Thread[Threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"WorkerPool worker {i + 1}" };
            _workers[i].Start();
        }
    }

    public int Threads { get; }

    /// <summary>Calls body(i) for i in [0, count), spread over the pool's threads; returns when all are done.</summary>
    /// <remarks>Allocates nothing beyond the delegate the caller passes.</remarks>
    public void For(int count, Action<int> body) => For(count, new ActionBody(body));

    /// <summary>
    /// Calls body.Invoke(i) for i in [0, count) on the pool's threads; returns when all are done. The first
    /// exception a body throws is rethrown here; once one is thrown, indices not yet started are skipped.
    /// </summary>
    public void For<TBody>(int count, TBody body) where TBody : struct, IForBody
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (count <= 0)
            return;
        if (count == 1 || _workers.Length == 0 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int i = 0; i < count; i++)
                body.Invoke(i);
            return;
        }
        try
        {
            long generation = (Volatile.Read(ref _ticket) >> 32) + 1;
            // Close the previous job's ticket first: a late worker that read its count and is about to
            // claim would otherwise pair the old ticket with the new job's fields.
            Interlocked.Exchange(ref _ticket, ((generation - 1) << 32) | Closed);
            _count = count;
            // body is a by-value parameter, so it lives in this frame, which outlives every index.
            _body = Unsafe.AsPointer(ref body);
            _invoke = &Invoke<TBody>;
            _done = 0;
            _error = null;
            Interlocked.Exchange(ref _ticket, generation << 32);
            // Pairs with the sleeper's increment-then-check: one of the two sides sees the other.
            if (Volatile.Read(ref _sleepers) > 0)
                lock (_gate) Monitor.PulseAll(_gate);

            RunIndices(generation);
            var wait = new SpinWait();
            while (Volatile.Read(ref _done) != count)
                wait.SpinOnce(sleep1Threshold: -1);
            if (_error is { } error)
                ExceptionDispatchInfo.Throw(error);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        lock (_gate) Monitor.PulseAll(_gate);
        foreach (var t in _workers)
            t.Join();
    }

    private static void Invoke<TBody>(void* body, int index) where TBody : struct, IForBody
        => Unsafe.AsRef<TBody>(body).Invoke(index);

    private void RunIndices(long generation)
    {
        while (true)
        {
            long ticket = Volatile.Read(ref _ticket);
            uint index = (uint)ticket;
            if (ticket >> 32 != generation || index >= (uint)_count)
                return;
            if (Interlocked.CompareExchange(ref _ticket, ticket + 1, ticket) != ticket)
                continue;
            // The claim succeeded while this job was current, and the job cannot finish before this index
            // is counted done, so the fields read below are this job's.
            try
            {
                if (Volatile.Read(ref _error) is null)
                    _invoke(_body, (int)index);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
            Interlocked.Increment(ref _done);
        }
    }

    private void WorkerLoop()
    {
        long seen = 0;
        while (true)
        {
            long ticket = WaitForJob(seen);
            if (_disposed)
                return;
            seen = ticket >> 32;
            RunIndices(seen);
        }
    }

    private static bool IsNewJob(long ticket, long seen) => ticket >> 32 > seen && (uint)ticket != Closed;

    private long WaitForJob(long seen)
    {
        long start = Stopwatch.GetTimestamp();
        for (int spins = 0; ; spins++)
        {
            long ticket = Volatile.Read(ref _ticket);
            if (IsNewJob(ticket, seen) || _disposed)
                return ticket;
            if ((spins & 63) == 63 && Stopwatch.GetTimestamp() - start > _spinTicks)
                break;
            Thread.SpinWait(1);
        }
        Interlocked.Increment(ref _sleepers);
        try
        {
            lock (_gate)
            {
                while (true)
                {
                    long ticket = Volatile.Read(ref _ticket);
                    if (IsNewJob(ticket, seen) || _disposed)
                        return ticket;
                    Monitor.Wait(_gate);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _sleepers);
        }
    }

    private readonly struct ActionBody(Action<int> action) : IForBody
    {
        public void Invoke(int index) => action(index);
    }
}
