using System.Collections.Concurrent;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// The one thread that runs a silo's compute: stage grains hand it their work and await the result.
/// </summary>
/// <remarks>
/// A prefill takes hundreds of milliseconds. Run inside a grain turn it would hold an Orleans scheduler
/// thread that long (stalling the silo's other grains and its membership pings), and the kernels would
/// start from whichever pool thread ran the turn, each with scratch buffers of its own. Here every
/// kernel starts from one long-lived thread, and the device's work runs in the order it was handed in,
/// which is also what makes one device safe to share between the stages on a silo.
/// </remarks>
public sealed class ComputeThread : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;
    private int _disposed;

    public ComputeThread(string name)
    {
        _thread = new Thread(RunWork) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Runs <paramref name="work"/> on this thread after everything handed in before it.</summary>
    public Task<T> Run<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            _work.Add(() =>
            {
                try
                {
                    done.SetResult(work());
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            });
        }
        catch (InvalidOperationException)
        {
            done.SetException(new ObjectDisposedException(_thread.Name, "the silo's compute thread has stopped"));
        }
        return done.Task;
    }

    public Task Run(Action work) => Run(() =>
    {
        work();
        return true;
    });

    private void RunWork()
    {
        foreach (var item in _work.GetConsumingEnumerable()) item();
    }

    /// <summary>Finishes the work already handed in, then stops the thread; later calls do nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _work.CompleteAdding();
        _thread.Join();
        _work.Dispose();
    }
}
