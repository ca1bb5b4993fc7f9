using System.Threading.Channels;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Files;

namespace FtpCluster.Grains.Batches;

/// <summary>
/// A stored batch input file's entries, read by <see cref="BatchInputReader"/> on a thread of its own and handed over
/// a few at a time. The reader is synchronous and its <see cref="StoredFileStream"/> waits on chunk grains, which a
/// grain's own thread must never do; the grain awaits the entries instead.
/// </summary>
internal static class BatchInputEntries
{
    /// <summary>Entries read ahead of the grain: a few, as one may carry a 1 MiB request.</summary>
    private const int ReadAhead = 16;

    /// <param name="stop">Ends the reading early (a batch that failed or was cancelled half way through its file).</param>
    public static ChannelReader<BatchInputEntry> Read(IGrainFactory grains, StoredFile file, CancellationToken stop)
    {
        var channel = Channel.CreateBounded<BatchInputEntry>(new BoundedChannelOptions(ReadAhead) { SingleReader = true, SingleWriter = true });
        _ = Task.Factory.StartNew(() => Produce(grains, file, channel.Writer, stop), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
        return channel.Reader;
    }

    private static void Produce(IGrainFactory grains, StoredFile file, ChannelWriter<BatchInputEntry> entries, CancellationToken stop)
    {
        try
        {
            using var stream = new StoredFileStream(grains, file);
            foreach (var entry in new BatchInputReader(stream, file.Filename, FileLimits.MaxBatchLines).Read())
                while (!entries.TryWrite(entry))
                    if (!entries.WaitToWriteAsync(stop).AsTask().GetAwaiter().GetResult()) return;
            entries.TryComplete();
        }
        catch (Exception e)
        {
            entries.TryComplete(e);
        }
    }
}
