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
    /// A KV cache's append in one launch: element i of the new keys and values, and position i while there are
    /// positions (a row has at least one float, so there are no more positions than elements).
    /// </summary>
    public static void AppendToCache(Index1D i, ArrayView<float> keys, ArrayView<float> values, ArrayView<int> positions,
        ArrayView<float> cacheKeys, ArrayView<float> cacheValues, ArrayView<int> cachePositions)
    {
        cacheKeys[i] = keys[i];
        cacheValues[i] = values[i];
        if (i < positions.Length)
            cachePositions[i] = positions[i];
    }
}
