using ILGPU;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>One sequence of a <see cref="CacheGroup"/>: its rows [FirstRow, FirstRow + Rows) of the group's rows, and spans of its KV cache.</summary>
internal readonly record struct CacheSlot(int FirstRow, int Rows, ArrayView<float> Keys, ArrayView<float> Values, ArrayView<int> Positions);

/// <summary>
/// Up to <see cref="Capacity"/> sequences' KV caches as one kernel parameter. A kernel takes no array of buffers, and
/// each sequence's cache is a buffer of its own, so the sequences of a decode step go to the append and attention
/// kernels this way, eight to a launch, instead of a launch each. The slots' rows are consecutive, in slot order.
/// </summary>
internal readonly struct CacheGroup
{
    public const int Capacity = 8;

    public readonly int Count;
    private readonly CacheSlot _0, _1, _2, _3, _4, _5, _6, _7;

    public CacheGroup(ReadOnlySpan<CacheSlot> slots)
    {
        if (slots.Length is < 1 or > Capacity)
            throw new ArgumentException($"a cache group holds 1 to {Capacity} sequences, got {slots.Length}");
        Count = slots.Length;
        _0 = slots[0];
        if (Count > 1) _1 = slots[1];
        if (Count > 2) _2 = slots[2];
        if (Count > 3) _3 = slots[3];
        if (Count > 4) _4 = slots[4];
        if (Count > 5) _5 = slots[5];
        if (Count > 6) _6 = slots[6];
        if (Count > 7) _7 = slots[7];
    }

    public CacheSlot this[int slot] => slot switch
    {
        0 => _0,
        1 => _1,
        2 => _2,
        3 => _3,
        4 => _4,
        5 => _5,
        6 => _6,
        _ => _7,
    };

    /// <summary>The slot whose rows hold <paramref name="row"/> of the group's rows.</summary>
    public int SlotOf(int row)
    {
        int slot = 0;
        while (slot + 1 < Count && row >= this[slot + 1].FirstRow)
            slot++;
        return slot;
    }

    /// <summary>Rows of all the slots.</summary>
    public int Rows => this[Count - 1].FirstRow + this[Count - 1].Rows;

    /// <summary>The most entries any slot's cache holds (by its positions).</summary>
    public int MostEntries
    {
        get
        {
            int most = 0;
            for (int slot = 0; slot < Count; slot++)
                most = Math.Max(most, this[slot].Positions.IntLength);
            return most;
        }
    }
}
