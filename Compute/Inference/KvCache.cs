using FtpCluster.Compute.Devices;

namespace FtpCluster.Compute.Inference;

/// <summary>
/// Keys and values one block has computed for one sequence, in position order, in the memory of the
/// device that computes the block, so attention reads them where they are. Under FTP a block holds
/// entries only for the tokens it computed, so each entry remembers its position (on the device for
/// the attention kernel, and on the host for the order checks a batch gets before it runs).
/// </summary>
/// <remarks>
/// It takes device memory only when first used, and then for all the rows of its first reservation (a prompt's chunk),
/// or the sequence's whole length where that is known ahead (<see cref="StageExecutor.Reserve"/>): then it never grows.
/// Each growth is an allocation, a copy and a free, and on CUDA a free waits for the device.
/// </remarks>
public sealed class LayerKvCache : IDisposable
{
    private readonly IComputeDevice _device;
    private readonly int _width;
    private readonly int _firstRoom;
    private readonly bool _lengthKnown;
    private Room? _room;
    private int[] _positions = [];

    /// <summary>The device memory of the cache's rows: keys and values [rows, kvDim], a position per row.</summary>
    private sealed record Room(DeviceBuffer<float> Keys, DeviceBuffer<float> Values, DeviceBuffer<int> Positions);

    /// <summary>Rows of room a cache takes at least, and the fewest it grows by.</summary>
    public const int GrowthRows = 16;

    /// <param name="length">The entries the cache will hold at most, when known ahead: its room when first used. 0: unknown.</param>
    public LayerKvCache(IComputeDevice device, int kvDim, int length = 0)
    {
        _device = device;
        _width = kvDim;
        _firstRoom = FirstRoom(length);
        _lengthKnown = length > 0;
    }

    /// <summary>The rows of room a cache takes when first used, for a sequence of <paramref name="length"/> tokens at most (0: unknown).</summary>
    public static int FirstRoom(int length) => Math.Max(GrowthRows, length);

    /// <summary>Device bytes one row of room takes: a key and a value of the KV width, and a position.</summary>
    public static long BytesPerRow(int kvDim) => (long)kvDim * 2 * sizeof(float) + sizeof(int);

    /// <summary>
    /// The most rows of room a cache holds once it has taken <paramref name="entries"/> entries, in whatever pieces they
    /// came: it grows to what it needs or by a quarter (<see cref="GrowthRows"/> at least), whichever is more, so its room
    /// passes its entries by at most that. Admission counts a sequence's length as this many rows, so that the memory its
    /// caches take stays inside the budget it was admitted under. (Doubling would copy less often, but leave up to half
    /// the room unused, which admission would have to count.)
    /// </summary>
    public static long RowsHeldAtMost(long entries) =>
        entries <= GrowthRows ? GrowthRows : entries - 1 + Math.Max(GrowthRows, (entries - 1) / 4);

    public int Count { get; private set; }

    /// <summary>[Count, kvDim] on the device.</summary>
    public DeviceSpan<float> Keys => TakenRoom().Keys.Span(Count * _width);

    /// <summary>[Count, kvDim] on the device.</summary>
    public DeviceSpan<float> Values => TakenRoom().Values.Span(Count * _width);

    /// <summary>The entries' positions on the device, for the attention kernel.</summary>
    public DeviceSpan<int> DevicePositions => TakenRoom().Positions.Span(Count);

    /// <summary>The entries' positions, kept on the host too.</summary>
    public ReadOnlySpan<int> Positions => _positions.AsSpan(0, Count);

    /// <summary>Rows of room it holds on the device, entries and the room ahead of them.</summary>
    public int Capacity => _positions.Length;

    /// <summary>
    /// Device memory it holds, every row of room, used or not. Before it is first used: none, or where its length was
    /// known ahead, the room it will take then (promised, so counted).
    /// </summary>
    public long Bytes => (_room is not null ? Capacity : _lengthKnown ? _firstRoom : 0) * BytesPerRow(_width);

    /// <summary>
    /// Takes room for the entries of consecutive new rows of a microbatch, [<paramref name="firstRow"/>, + rows), at
    /// <paramref name="positions"/>, and returns it: the device copies the rows' keys, values and positions there
    /// (<see cref="IComputeDevice.AppendToCaches"/>, for every sequence of the microbatch at once) before the cache is read.
    /// </summary>
    public SequenceCache Reserve(int firstRow, ReadOnlySpan<int> positions)
    {
        int rows = positions.Length;
        for (int i = 0; i < rows; i++)
        {
            int previous = i > 0 ? positions[i - 1] : Count > 0 ? _positions[Count - 1] : -1;
            if (positions[i] <= previous)
                throw new InvalidOperationException($"cache entries must come in increasing position order: {positions[i]} after {previous}");
        }
        if (Count + rows > Capacity)
            Grow(Math.Max(Count + rows, _room is null ? _firstRoom : Capacity + Math.Max(GrowthRows, Capacity / 4)));
        var buffers = TakenRoom();
        var room = new SequenceCache(firstRow, rows, new DeviceSpan<float>(buffers.Keys, (long)Count * _width, rows * _width),
            new DeviceSpan<float>(buffers.Values, (long)Count * _width, rows * _width), new DeviceSpan<int>(buffers.Positions, Count, rows));
        positions.CopyTo(_positions.AsSpan(Count));
        Count += rows;
        return room;
    }

    /// <summary>The cache's entries, for the attention of a microbatch's rows [<paramref name="firstRow"/>, + <paramref name="rows"/>).</summary>
    public SequenceCache Entries(int firstRow, int rows) => new(firstRow, rows, Keys, Values, DevicePositions);

    /// <summary>The device memory of the rows, taken if the cache has none yet.</summary>
    private Room TakenRoom()
    {
        if (_room is null) Grow(_firstRoom);
        return _room!;
    }

    private void Grow(int capacity)
    {
        _room = new Room(Moved(_room?.Keys, (long)capacity * _width, Count * _width),
            Moved(_room?.Values, (long)capacity * _width, Count * _width), Moved(_room?.Positions, capacity, Count));
        Array.Resize(ref _positions, capacity);
    }

    /// <summary>A larger buffer holding the first <paramref name="used"/> elements of <paramref name="old"/>, which is freed.</summary>
    private DeviceBuffer<T> Moved<T>(DeviceBuffer<T>? old, long capacity, int used)
        where T : unmanaged
    {
        var grown = _device.Allocate<T>(capacity);
        if (old is not null)
        {
            _device.Copy(old.Span(used), grown.Span(used));
            old.Dispose();
        }
        return grown;
    }

    public void Dispose()
    {
        _room?.Keys.Dispose();
        _room?.Values.Dispose();
        _room?.Positions.Dispose();
    }
}

/// <summary>The KV cache of one sequence for the blocks of one slice, on the slice's device.</summary>
public sealed class KvCache : IDisposable
{
    private readonly LayerKvCache[] _layers;

    /// <param name="length">The sequence's tokens at most, when known ahead: every block's cache takes that room once (see <see cref="LayerKvCache"/>). 0: unknown.</param>
    public KvCache(SliceSpec slice, int kvDim, IComputeDevice device, int length = 0)
    {
        FirstLayer = slice.FirstLayer;
        _layers = new LayerKvCache[slice.LayerCount];
        for (int i = 0; i < _layers.Length; i++) _layers[i] = new LayerKvCache(device, kvDim, length);
    }

    public int FirstLayer { get; }

    public LayerKvCache Layer(int layer) => _layers[layer - FirstLayer];

    /// <summary>The latest position any block holds an entry for; -1 when empty. New rows must come after it.</summary>
    public int LastPosition => _layers.Max(l => l.Count == 0 ? -1 : l.Positions[^1]);

    /// <summary>Device memory its blocks' caches hold (<see cref="LayerKvCache.Bytes"/>).</summary>
    public long Bytes => _layers.Sum(l => l.Bytes);

    /// <summary>Frees the device memory of every block's entries.</summary>
    public void Dispose()
    {
        foreach (var layer in _layers) layer.Dispose();
    }
}
