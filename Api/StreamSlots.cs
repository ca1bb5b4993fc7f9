namespace FtpCluster.Api;

/// <summary>Streams open per API key on this silo, bounded by <see cref="HttpApiOptions.MaxStreamsPerKey"/>.</summary>
public sealed class StreamSlots(int maxPerKey)
{
    private readonly Dictionary<string, int> _open = new(StringComparer.Ordinal);

    /// <summary>Takes a slot for <paramref name="key"/>, released by disposing the result.</summary>
    /// <exception cref="ApiException">429: the key has <paramref name="maxPerKey"/> streams open already.</exception>
    public IDisposable Take(string key)
    {
        lock (_open)
        {
            int open = _open.GetValueOrDefault(key);
            if (open >= maxPerKey)
                throw ApiException.Overloaded($"this API key has {open} streams open on this server, the most it may: wait for one to end");
            _open[key] = open + 1;
        }
        return new Slot(this, key);
    }

    private void Release(string key)
    {
        lock (_open)
        {
            if (--_open[key] == 0) _open.Remove(key);
        }
    }

    private sealed class Slot(StreamSlots slots, string key) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) slots.Release(key);
        }
    }
}
