using ILGPU;
using ILGPU.Algorithms;

namespace FtpCluster.Compute.Kernels.Ilgpu;

internal static class NormKernels
{
    /// <summary>Threads per RMSNorm group; one group normalizes one row.</summary>
    public const int RmsNormGroupSize = 128;

    /// <summary>Room for one partial sum per warp of a group of up to 1024 threads.</summary>
    private const int MaxWarpsPerGroup = 32;

    public static KernelConfig RmsNormConfig(int rows) => new(rows, RmsNormGroupSize);

    /// <summary>y[r] = x[r] / sqrt(mean(x[r]²) + eps) ⊙ weight, for row r = the group index.</summary>
    public static void RmsNorm(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> y, int dim, float eps)
    {
        var warpSums = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        long rowStart = (long)Grid.IdxX * dim;
        float partial = 0f;
        for (int i = Group.IdxX; i < dim; i += Group.DimX)
        {
            float v = x[rowStart + i];
            partial += v * v;
        }
        float warpSum = WarpReduce.Sum(partial);
        if (Warp.IsFirstLane)
            warpSums[Warp.WarpIdx] = warpSum;
        Group.Barrier();
        // Every thread adds the few warp sums itself: no second barrier, and the same order everywhere.
        float sumOfSquares = 0f;
        int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
        for (int w = 0; w < warps; w++)
            sumOfSquares += warpSums[w];
        float scale = 1f / XMath.Sqrt(sumOfSquares / dim + eps);
        for (int i = Group.IdxX; i < dim; i += Group.DimX)
            y[rowStart + i] = x[rowStart + i] * scale * weight[i];
    }
}
