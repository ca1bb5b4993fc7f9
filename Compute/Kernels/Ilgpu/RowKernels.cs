using ILGPU;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>FTP's row subsets on the device: one thread per element moved, rows of <c>width</c> floats.</summary>
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
}
