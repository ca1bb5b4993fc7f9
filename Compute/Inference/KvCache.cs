namespace FtpCluster.Compute.Inference;

/// <summary>
/// Keys and values one block has computed for one sequence, in position order. Under FTP a block
/// holds entries only for the tokens it computed, so each entry remembers its position.
/// </summary>
public sealed class LayerKvCache
{
    private readonly int _width;
    private float[] _keys;
    private float[] _values;
    private int[] _positions;

    public LayerKvCache(int kvDim, int initialCapacity = 16)
    {
        _width = kvDim;
        _keys = new float[initialCapacity * kvDim];
        _values = new float[initialCapacity * kvDim];
        _positions = new int[initialCapacity];
    }

    public int Count { get; private set; }
    public ReadOnlySpan<float> Keys => _keys.AsSpan(0, Count * _width);
    public ReadOnlySpan<float> Values => _values.AsSpan(0, Count * _width);
    public ReadOnlySpan<int> Positions => _positions.AsSpan(0, Count);
    public long Bytes => (long)Count * _width * 2 * sizeof(float) + Count * sizeof(int);

    public void Append(ReadOnlySpan<float> key, ReadOnlySpan<float> value, int position)
    {
        if (Count > 0 && position <= _positions[Count - 1])
            throw new InvalidOperationException($"cache entries must come in increasing position order: {position} after {_positions[Count - 1]}");
        if (Count == _positions.Length)
        {
            int capacity = _positions.Length * 2;
            Array.Resize(ref _keys, capacity * _width);
            Array.Resize(ref _values, capacity * _width);
            Array.Resize(ref _positions, capacity);
        }
        key.CopyTo(_keys.AsSpan(Count * _width, _width));
        value.CopyTo(_values.AsSpan(Count * _width, _width));
        _positions[Count] = position;
        Count++;
    }
}

/// <summary>The KV cache of one sequence for the blocks of one slice.</summary>
public sealed class KvCache
{
    private readonly LayerKvCache[] _layers;

    public KvCache(SliceSpec slice, int kvDim)
    {
        FirstLayer = slice.FirstLayer;
        _layers = new LayerKvCache[slice.LayerCount];
        for (int i = 0; i < _layers.Length; i++) _layers[i] = new LayerKvCache(kvDim);
    }

    public int FirstLayer { get; }

    public LayerKvCache Layer(int layer) => _layers[layer - FirstLayer];

    /// <summary>The latest position any block holds an entry for; -1 when empty. New rows must come after it.</summary>
    public int LastPosition => _layers.Max(l => l.Count == 0 ? -1 : l.Positions[^1]);

    public long Bytes => _layers.Sum(l => l.Bytes);
}
