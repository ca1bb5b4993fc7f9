using ILGPU;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>y[M, N] = x[M, K] · wᵀ, with w [N, K] row-major in its storage type.</summary>
internal readonly record struct MatMulShape(int M, int N, int K);

/// <summary>
/// The matrix kernels: a shared-memory tiled GEMM for batches of rows and a warp-per-output GEMV for
/// the few-row case (decode), where a GEMM tile would leave most of its threads idle.
/// </summary>
internal static class MatMulKernels
{
    /// <summary>Edge of the square GEMM tile; a group is Tile × Tile threads, one output each.</summary>
    public const int Tile = 16;

    /// <summary>Row stride of a shared tile: one float of padding so that reading a tile column does not hit one bank.</summary>
    private const int TileStride = Tile + 1;

    /// <summary>Warps per GEMV group; each warp computes one output column for every input row.</summary>
    public const int GemvWarpsPerGroup = 4;

    /// <summary>Up to this many input rows the GEMV beats the tiled GEMM; its kernel keeps one partial sum per row in registers, so no more.</summary>
    public const int GemvMaxRows = 4;

    public static KernelConfig TiledGemmConfig(MatMulShape s) =>
        new(new Index2D((s.N + Tile - 1) / Tile, (s.M + Tile - 1) / Tile), new Index2D(Tile, Tile));

    public static KernelConfig GemvConfig(MatMulShape s, int warpSize) =>
        new((s.N + GemvWarpsPerGroup - 1) / GemvWarpsPerGroup, GemvWarpsPerGroup * warpSize);

    /// <summary>
    /// Group (gx, gy) computes the output tile of rows [gy·Tile, +Tile) and columns [gx·Tile, +Tile).
    /// It walks K in steps of Tile, staging a tile of x and a tile of w (widened or dequantized to float) in
    /// shared memory, so every global element is read once per group instead of once per thread.
    /// </summary>
    public static void TiledGemm<TStorage, TFormat>(
        ArrayView<float> x, ArrayView<TStorage> w, ArrayView<float> y, MatMulShape shape)
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage>
    {
        var xTile = SharedMemory.Allocate<float>(Tile * TileStride);
        var wTile = SharedMemory.Allocate<float>(Tile * TileStride);
        var format = default(TFormat);
        int tx = Group.IdxX, ty = Group.IdxY;
        int row = Grid.IdxY * Tile + ty;
        int column = Grid.IdxX * Tile + tx;
        // The thread loads w row (Grid.IdxX·Tile + ty) so that adjacent threads read adjacent k.
        int loadedWeightRow = Grid.IdxX * Tile + ty;
        float sum = 0f;
        for (int k0 = 0; k0 < shape.K; k0 += Tile)
        {
            int k = k0 + tx;
            xTile[ty * TileStride + tx] = row < shape.M && k < shape.K ? x[(long)row * shape.K + k] : 0f;
            wTile[ty * TileStride + tx] = loadedWeightRow < shape.N && k < shape.K
                ? format.Weight(w, loadedWeightRow, k, shape.K)
                : 0f;
            Group.Barrier();
            for (int kk = 0; kk < Tile; kk++)
                sum += xTile[ty * TileStride + kk] * wTile[tx * TileStride + kk];
            Group.Barrier();
        }
        if (row < shape.M && column < shape.N)
            y[(long)row * shape.N + column] = sum;
    }

    /// <summary>
    /// Warp (group, warp index) owns one output column n: its lanes stride along K, reading the weight row
    /// coalesced and once for all of the (at most <see cref="GemvMaxRows"/>) input rows, whose partial sums
    /// sit in registers; a shuffle reduction per row gives the dot products. Decode is bound by reading the
    /// weights, so a batch of decode rows costs about what one row does. On quantized blocks a warp step covers 32
    /// consecutive weights, one block of the 32-element types or one sub-block of a k-quant, whose bytes the lanes
    /// read together.
    /// </summary>
    public static void WarpGemv<TStorage, TFormat>(
        ArrayView<float> x, ArrayView<TStorage> w, ArrayView<float> y, MatMulShape shape)
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage>
    {
        var format = default(TFormat);
        int n = Grid.IdxX * GemvWarpsPerGroup + Warp.WarpIdx;
        if (n >= shape.N)
            return;
        int lane = Warp.LaneIdx, rows = shape.M;
        long k1 = shape.K, k2 = 2L * shape.K, k3 = 3L * shape.K;
        float partial0 = 0f, partial1 = 0f, partial2 = 0f, partial3 = 0f;
        for (int k = lane; k < shape.K; k += Warp.WarpSize)
        {
            float weight = format.Weight(w, n, k, shape.K);
            partial0 += x[k] * weight;
            if (rows > 1) partial1 += x[k1 + k] * weight;
            if (rows > 2) partial2 += x[k2 + k] * weight;
            if (rows > 3) partial3 += x[k3 + k] * weight;
        }
        // rows is the same for every lane, so each reduction runs on the whole warp or on none of it.
        float sum0 = WarpReduce.Sum(partial0);
        float sum1 = rows > 1 ? WarpReduce.Sum(partial1) : 0f;
        float sum2 = rows > 2 ? WarpReduce.Sum(partial2) : 0f;
        float sum3 = rows > 3 ? WarpReduce.Sum(partial3) : 0f;
        if (lane != 0)
            return;
        y[n] = sum0;
        if (rows > 1) y[(long)shape.N + n] = sum1;
        if (rows > 2) y[2L * shape.N + n] = sum2;
        if (rows > 3) y[3L * shape.N + n] = sum3;
    }
}
