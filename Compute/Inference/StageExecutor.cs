namespace FtpCluster.Compute.Inference;

/// <summary>
/// One stage serving many sequences: its slice of the model and a KV cache per sequence in flight,
/// found by sequence id. What a stage grain holds; no Orleans here.
/// Not thread-safe: a stage serves one call at a time.
/// </summary>
public sealed class StageExecutor : IDisposable
{
    private readonly Dictionary<long, KvCache> _caches = new();
    private TokenRow[] _rows = [];

    public StageExecutor(TransformerStage stage)
    {
        Stage = stage;
    }

    public TransformerStage Stage { get; }

    public int SequencesInFlight => _caches.Count;

    /// <summary>The sequences this stage holds caches for.</summary>
    public long[] SequenceIds => [.. _caches.Keys];

    /// <summary>Device memory the caches of the sequences in flight hold (<see cref="KvCache.Bytes"/>).</summary>
    public long KvCacheBytes => _caches.Values.Sum(c => c.Bytes);

    /// <summary>Whether the stage holds a cache for the sequence.</summary>
    public bool HoldsSequence(long sequenceId) => _caches.ContainsKey(sequenceId);

    /// <summary>
    /// Runs the stage's blocks over rows of any number of sequences (each sequence's rows contiguous,
    /// positions increasing, continuing where that sequence's cache left off). A sequence seen for the
    /// first time gets a new cache.
    /// </summary>
    /// <param name="computeRows">FTP: per block, the rows it computes (see <see cref="TransformerStage.Forward"/>).</param>
    public void Forward(ReadOnlySpan<long> sequenceIds, ReadOnlySpan<int> positions, Span<float> hidden, IReadOnlyList<int[]?>? computeRows = null)
    {
        if (hidden.Length != positions.Length * Stage.Config.Dim)
            throw new ArgumentException($"hidden has {hidden.Length} floats for {positions.Length} rows of {Stage.Config.Dim}");
        Stage.Forward(Rows(sequenceIds, positions), hidden, computeRows);
    }

    /// <summary>
    /// <see cref="Forward"/> on the last stage, through to the logits of <paramref name="logitRows"/> (see
    /// <see cref="TransformerStage.ForwardToLogits"/>); <paramref name="hidden"/> is not updated.
    /// </summary>
    public void ForwardToLogits(ReadOnlySpan<long> sequenceIds, ReadOnlySpan<int> positions, ReadOnlySpan<float> hidden,
        IReadOnlyList<int[]?>? computeRows, int[] logitRows, TransformerStage.LogitsReady onLogits)
    {
        if (hidden.Length != positions.Length * Stage.Config.Dim)
            throw new ArgumentException($"hidden has {hidden.Length} floats for {positions.Length} rows of {Stage.Config.Dim}");
        Stage.ForwardToLogits(Rows(sequenceIds, positions), hidden, computeRows, logitRows, onLogits);
    }

    /// <summary>
    /// Makes a sequence's cache before its first rows come, for a sequence of <paramref name="length"/> tokens at most:
    /// each block's cache then takes that room at its first rows and never grows. False when the stage already holds the
    /// sequence (its cache is left as it is).
    /// </summary>
    public bool Reserve(long sequenceId, int length)
    {
        if (_caches.ContainsKey(sequenceId))
            return false;
        _caches[sequenceId] = Stage.NewCache(length);
        return true;
    }

    /// <summary>The rows of the given sequences at the given positions, each over its sequence's cache (a new one for a new sequence).</summary>
    public ReadOnlySpan<TokenRow> Rows(ReadOnlySpan<long> sequenceIds, ReadOnlySpan<int> positions)
    {
        if (sequenceIds.Length != positions.Length)
            throw new ArgumentException($"{sequenceIds.Length} sequence ids for {positions.Length} positions");
        if (_rows.Length < positions.Length) _rows = new TokenRow[positions.Length];
        for (int i = 0; i < positions.Length; i++)
        {
            if (!_caches.TryGetValue(sequenceIds[i], out var cache))
                _caches[sequenceIds[i]] = cache = Stage.NewCache();
            _rows[i] = new TokenRow(cache, positions[i]);
        }
        return _rows.AsSpan(0, positions.Length);
    }

    /// <summary>Frees a finished or cancelled sequence's cache; false when the stage holds none for it.</summary>
    public bool Release(long sequenceId)
    {
        if (!_caches.Remove(sequenceId, out var cache))
            return false;
        cache.Dispose();
        return true;
    }

    public void Dispose()
    {
        foreach (var cache in _caches.Values) cache.Dispose();
        _caches.Clear();
        Stage.Dispose();
    }
}
