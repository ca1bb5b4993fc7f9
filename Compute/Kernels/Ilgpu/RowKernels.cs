using ILGPU;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>Rows moved on the device (FTP's row subsets, rows of <c>width</c> floats; KV cache appends): one thread per element moved.</summary>
internal static class RowKernels
{
    /// <summary>destination[i] = source[rows[i]], for element <paramref name="index"/> of the gathered rows.</summary>
    public static void Gather(Index1D index, ArrayView<float> source, ArrayView<int> rows, int width, ArrayView<float> destination)
    {
        int row = index / width, column = index % width;
        destination[index] = source[(long)rows[row] * width + column];
    }

    /// <summary>destination[rows[i]] = source[i], for element <paramref name="index"/> of the gathered rows.</summary>
    public static void Scatter(Index1D index, ArrayView<float> source, ArrayView<int> rows, int width, ArrayView<float> destination)
    {
        int row = index / width, column = index % width;
        destination[(long)rows[row] * width + column] = source[index];
    }

    /// <summary>
    /// The KV cache appends of up to <see cref="CacheGroup.Capacity"/> sequences in one launch: element i of the group's
    /// new rows of keys and values (rows of <paramref name="width"/>) into its sequence's cache room, and the row's
    /// position with the row's first element.
    /// </summary>
    public static void AppendToCaches(Index1D i, ArrayView<float> keys, ArrayView<float> values, ArrayView<int> positions,
        CacheGroup caches, int width)
    {
        int row = i / width, column = i % width;
        var slot = caches[caches.SlotOf(row)];
        long at = (long)(row - slot.FirstRow) * width + column;
        slot.Keys[at] = keys[i];
        slot.Values[at] = values[i];
        if (column == 0)
            slot.Positions[row - slot.FirstRow] = positions[row];
    }
}
