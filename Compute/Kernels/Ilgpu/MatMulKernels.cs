using ILGPU;
using ILGPU.Algorithms;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>
/// y[M, N] = x[M, K] · wᵀ (or y += x · wᵀ, as <see cref="Output"/> says), with w [N, K] row-major in its storage type;
/// <see cref="NormEps"/> is the eps of the RMSNorm x's rows take first, where a GEMV kernel is given a norm weight.
/// </summary>
internal readonly record struct MatMulShape(int M, int N, int K, MatMulOutput Output = MatMulOutput.Store, float NormEps = 0);

/// <summary>
/// The q, k and v products of <see cref="Rows"/> rows of width <see cref="K"/>: their matrices' output widths; and the eps
/// of the RMSNorm the rows take first, where the kernel is given a norm weight.
/// </summary>
internal readonly record struct QkvShape(int Rows, int K, int QueryColumns, int KeyColumns, int ValueColumns, float NormEps = 0)
{
    public int Columns => QueryColumns + KeyColumns + ValueColumns;
}

/// <summary>What a matrix kernel does with each dot product: store it, or add it to y (the residual connection).</summary>
internal enum MatMulOutput
{
    Store,
    Add,
}

/// <summary>Which kernel computes a product: each is fastest over its own range of row counts (see <see cref="MatMulKernels.For"/>).</summary>
internal enum MatMulKernel
{
    /// <summary>A warp per output column, for the few rows of decode: bound by reading the weights.</summary>
    Gemv,

    /// <summary>A 16 × 16 tile, one output per thread: batched decode and short chunks, which would leave a larger tile empty.</summary>
    TiledGemm,

    /// <summary>A 64 × 64 tile, 16 outputs per thread: prefill, bound by arithmetic.</summary>
    BlockedGemm,
}

/// <summary>
/// The matrix kernels: a warp-per-output GEMV for the few-row case (decode), where a GEMM tile would leave most of its
/// threads idle; a shared-memory tiled GEMM for small batches of rows; a register-blocked GEMM for prefill.
/// </summary>
internal static class MatMulKernels
{
    /// <summary>Edge of the square GEMM tile; a group is Tile × Tile threads, one output each.</summary>
    public const int Tile = 16;

    /// <summary>Row stride of a shared tile: one float of padding so that reading a tile column does not hit one bank.</summary>
    private const int TileStride = Tile + 1;

    /// <summary>Warps per GEMV group; each warp computes one output column for every input row.</summary>
    public const int GemvWarpsPerGroup = 4;

    /// <summary>
    /// Up to this many input rows the GEMV beats the tiled GEMM: it reads each weight once, where the 16-row tile pads
    /// a batch of decode rows and costs two shared-memory reads per multiply-add. It keeps one partial sum per row in
    /// registers, so no more.
    /// </summary>
    public const int GemvMaxRows = 8;

    /// <summary>
    /// From this many rows on, the blocked GEMM: its 64-row tile is then at least full once, where for fewer rows
    /// its empty rows would cost as much arithmetic as full ones.
    /// </summary>
    public const int BlockedGemmMinRows = 64;

    /// <summary>Edge of the blocked GEMM's output tile; its group is <see cref="BlockedThreads"/>² threads, each 4 × 4 outputs.</summary>
    public const int BlockedTile = 64;

    /// <summary>Edge of the blocked GEMM's square group of threads.</summary>
    public const int BlockedThreads = 16;

    /// <summary>K per stage of the blocked GEMM: each thread stages four neighbouring k of one x row and one w row.</summary>
    private const int BlockedDepth = 16;

    /// <summary>Row stride of the blocked GEMM's shared tiles, padded so that a thread's staged column spreads over the banks.</summary>
    private const int BlockedStride = BlockedTile + 1;

    public static MatMulKernel For(int rows) =>
        rows <= GemvMaxRows ? MatMulKernel.Gemv : rows < BlockedGemmMinRows ? MatMulKernel.TiledGemm : MatMulKernel.BlockedGemm;

    public static KernelConfig Config(MatMulKernel kernel, MatMulShape shape, int warpSize) => kernel switch
    {
        MatMulKernel.Gemv => GemvConfig(shape, warpSize),
        MatMulKernel.TiledGemm => TiledGemmConfig(shape),
        _ => BlockedGemmConfig(shape),
    };

    public static KernelConfig BlockedGemmConfig(MatMulShape s) =>
        new(new Index2D((s.N + BlockedTile - 1) / BlockedTile, (s.M + BlockedTile - 1) / BlockedTile),
            new Index2D(BlockedThreads, BlockedThreads));

    public static KernelConfig TiledGemmConfig(MatMulShape s) =>
        new(new Index2D((s.N + Tile - 1) / Tile, (s.M + Tile - 1) / Tile), new Index2D(Tile, Tile));

    public static KernelConfig QkvGemvConfig(QkvShape s, int warpSize) =>
        new((s.Columns + GemvWarpsPerGroup - 1) / GemvWarpsPerGroup, GemvWarpsPerGroup * warpSize);

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
            Write(y, shape, row, column, sum);
    }

    /// <summary>
    /// Group (gx, gy) computes the output tile of rows [gy·64, +64) and columns [gx·64, +64); thread (tx, ty) the 16
    /// outputs of rows ty + 16i and columns tx + 16j (i, j &lt; 4), in registers. Per step of 16 k, every thread
    /// stages four neighbouring k of one x row and of one w row in shared memory (one 8-byte load of 16-bit weights),
    /// then each k costs it 8 shared reads for 16 multiply-adds, where the 16 × 16 tile takes 2 for 1: prefill is
    /// bound by arithmetic, and the shared reads would otherwise bound it first.
    /// </summary>
    public static void BlockedGemm<TStorage, TFormat>(
        ArrayView<float> x, ArrayView<TStorage> w, ArrayView<float> y, MatMulShape shape)
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage>
    {
        const int T = BlockedThreads;
        // Stored k-major: xTile[k · stride + row], wTile[k · stride + column].
        var xTile = SharedMemory.Allocate<float>(BlockedDepth * BlockedStride);
        var wTile = SharedMemory.Allocate<float>(BlockedDepth * BlockedStride);
        var format = default(TFormat);
        int tx = Group.IdxX, ty = Group.IdxY;
        int firstRow = Grid.IdxY * BlockedTile, firstColumn = Grid.IdxX * BlockedTile;
        int thread = ty * BlockedThreads + tx;
        int stagedRow = thread / 4, stagedK = thread % 4 * 4;
        int xRow = firstRow + stagedRow, wRow = firstColumn + stagedRow;
        Float4 row0 = default, row1 = default, row2 = default, row3 = default;
        for (int k0 = 0; k0 < shape.K; k0 += BlockedDepth)
        {
            int k = k0 + stagedK;
            StageColumn(xTile, stagedK, stagedRow, StagedInputs(x, xRow, k, shape));
            StageColumn(wTile, stagedK, stagedRow, StagedWeights(format, w, wRow, k, shape));
            Group.Barrier();
            for (int kk = 0; kk < BlockedDepth; kk++)
            {
                int at = kk * BlockedStride;
                var columns = new Float4(wTile[at + tx], wTile[at + tx + T], wTile[at + tx + 2 * T], wTile[at + tx + 3 * T]);
                row0 = row0.MultiplyAdd(xTile[at + ty], columns);
                row1 = row1.MultiplyAdd(xTile[at + ty + T], columns);
                row2 = row2.MultiplyAdd(xTile[at + ty + 2 * T], columns);
                row3 = row3.MultiplyAdd(xTile[at + ty + 3 * T], columns);
            }
            Group.Barrier();
        }
        WriteBlockedRow(y, shape, firstRow + ty, firstColumn + tx, row0);
        WriteBlockedRow(y, shape, firstRow + ty + T, firstColumn + tx, row1);
        WriteBlockedRow(y, shape, firstRow + ty + 2 * T, firstColumn + tx, row2);
        WriteBlockedRow(y, shape, firstRow + ty + 3 * T, firstColumn + tx, row3);
    }

    /// <summary>x[row, k..k+3], zero past the matrix's edges.</summary>
    private static Float4 StagedInputs(ArrayView<float> x, int row, int k, MatMulShape shape)
    {
        if (row >= shape.M)
            return default;
        long at = (long)row * shape.K + k;
        return new Float4(
            k < shape.K ? x[at] : 0f, k + 1 < shape.K ? x[at + 1] : 0f,
            k + 2 < shape.K ? x[at + 2] : 0f, k + 3 < shape.K ? x[at + 3] : 0f);
    }

    /// <summary>w[row, k..k+3] as floats, zero past the matrix's edges: one read of four where K allows it.</summary>
    private static Float4 StagedWeights<TStorage, TFormat>(TFormat format, ArrayView<TStorage> w, int row, int k, MatMulShape shape)
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage>
    {
        if (row >= shape.N || k >= shape.K)
            return default;
        if (shape.K % 4 == 0)
        {
            var four = format.Four(w, row, k, shape.K);
            return new Float4(four.W0, four.W1, four.W2, four.W3);
        }
        return new Float4(
            format.Weight(w, row, k, shape.K), k + 1 < shape.K ? format.Weight(w, row, k + 1, shape.K) : 0f,
            k + 2 < shape.K ? format.Weight(w, row, k + 2, shape.K) : 0f, k + 3 < shape.K ? format.Weight(w, row, k + 3, shape.K) : 0f);
    }

    /// <summary>Four neighbouring k of one row into a k-major tile.</summary>
    private static void StageColumn(ArrayView<float> tile, int k, int row, Float4 values)
    {
        tile[k * BlockedStride + row] = values.V0;
        tile[(k + 1) * BlockedStride + row] = values.V1;
        tile[(k + 2) * BlockedStride + row] = values.V2;
        tile[(k + 3) * BlockedStride + row] = values.V3;
    }

    /// <summary>A thread's four outputs of one row, at columns column + 16j.</summary>
    private static void WriteBlockedRow(ArrayView<float> y, MatMulShape shape, int row, int column, Float4 sums)
    {
        if (row >= shape.M)
            return;
        if (column < shape.N) Write(y, shape, row, column, sums.V0);
        const int T = BlockedThreads;
        if (column + T < shape.N) Write(y, shape, row, column + T, sums.V1);
        if (column + 2 * T < shape.N) Write(y, shape, row, column + 2 * T, sums.V2);
        if (column + 3 * T < shape.N) Write(y, shape, row, column + 3 * T, sums.V3);
    }

    private static void Write(ArrayView<float> y, MatMulShape shape, int row, int column, float sum)
    {
        long at = (long)row * shape.N + column;
        y[at] = shape.Output == MatMulOutput.Add ? y[at] + sum : sum;
    }

    /// <summary>
    /// Warp (group, warp index) owns one output column n: its lanes stride along K, reading the weight row
    /// coalesced and once for all of the (at most <see cref="GemvMaxRows"/>) input rows, whose partial sums
    /// sit in registers; a shuffle reduction per row gives the dot products. Decode is bound by reading the
    /// weights, so a batch of decode rows costs about what one row does.
    /// </summary>
    public static void WarpGemv<TStorage, TFormat>(
        ArrayView<float> x, ArrayView<TStorage> w, ArrayView<float> y, MatMulShape shape)
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage>
    {
        int n = Grid.IdxX * GemvWarpsPerGroup + Warp.WarpIdx;
        if (n >= shape.N)
            return;
        var sums = RowDots<TStorage, TFormat>(x, w, n, shape, default);
        if (Warp.LaneIdx == 0)
            for (int row = 0; row < shape.M; row++)
                Write(y, shape, row, n, sums[row]);
    }

    /// <summary>
    /// The gated half of the MLP for a few rows: y[r, n] = silu(x[r] · gate[n]) · (x[r] · up[n]), x's rows first
    /// RMS-normalized by <paramref name="norm"/> unless it is empty. Like <see cref="WarpGemv{TStorage, TFormat}"/>, a
    /// warp per column n, reading both weight rows; one launch and no normalized rows, gate or up activations written,
    /// where a norm, separate products and a SwiGLU pass would take four.
    /// </summary>
    public static void WarpGemvSwiGlu<TStorage, TFormat>(
        ArrayView<float> x, ArrayView<TStorage> gate, ArrayView<TStorage> up, ArrayView<float> y, MatMulShape shape, ArrayView<float> norm)
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage>
    {
        int n = Grid.IdxX * GemvWarpsPerGroup + Warp.WarpIdx;
        if (n >= shape.N)
            return;
        var scales = RowScales(x, norm, shape);
        var gates = RowDots<TStorage, TFormat>(x, gate, n, shape, norm);
        var ups = RowDots<TStorage, TFormat>(x, up, n, shape, norm);
        if (Warp.LaneIdx == 0)
            for (int row = 0; row < shape.M; row++)
                y[(long)row * shape.N + n] = ElementwiseKernels.SwiGlu(gates[row] * scales[row], ups[row] * scales[row]);
    }

    /// <summary>
    /// The attention's q, k and v products of a few rows in one launch: warps over the columns of the three matrices
    /// one after another, each a warp of <see cref="WarpGemv{TStorage, TFormat}"/> on its matrix; x's rows first
    /// RMS-normalized by <paramref name="norm"/> unless it is empty.
    /// </summary>
    public static void WarpGemvQkv<TStorage, TFormat>(ArrayView<float> x,
        ArrayView<TStorage> wq, ArrayView<TStorage> wk, ArrayView<TStorage> wv,
        ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, QkvShape shape, ArrayView<float> norm)
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage>
    {
        int column = Grid.IdxX * GemvWarpsPerGroup + Warp.WarpIdx;
        if (column >= shape.Columns)
            return;
        bool isQuery = column < shape.QueryColumns, isKey = !isQuery && column < shape.QueryColumns + shape.KeyColumns;
        var w = isQuery ? wq : isKey ? wk : wv;
        var y = isQuery ? q : isKey ? k : v;
        int n = isQuery ? column : isKey ? column - shape.QueryColumns : column - shape.QueryColumns - shape.KeyColumns;
        int columns = isQuery ? shape.QueryColumns : isKey ? shape.KeyColumns : shape.ValueColumns;
        var product = new MatMulShape(shape.Rows, columns, shape.K, NormEps: shape.NormEps);
        var scales = RowScales(x, norm, product);
        var sums = RowDots<TStorage, TFormat>(x, w, n, product, norm);
        if (Warp.LaneIdx == 0)
            for (int row = 0; row < shape.Rows; row++)
                Write(y, product, row, n, sums[row] * scales[row]);
    }

    /// <summary>
    /// Weight row n's dot products with the (at most 8) rows of x, summed across the warp: every lane gets them.
    /// Where K is a multiple of 4 each lane reads four neighbouring weights per step (one 8-byte load of 16-bit
    /// weights; a block's neighbouring quants), 128 weights per warp step, four steps at once; else one, 32 per step.
    /// With a norm weight g (not empty), the dot products are with x ⊙ g: the weights are scaled by g as they are read.
    /// </summary>
    private static RowSums RowDots<TStorage, TFormat>(ArrayView<float> x, ArrayView<TStorage> w, int n, MatMulShape shape, ArrayView<float> norm)
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage>
    {
        var format = default(TFormat);
        int lane = Warp.LaneIdx;
        var partials = new RowSums(shape.M, shape.K);
        if (shape.K % 4 == 0)
        {
            int step = 4 * Warp.WarpSize, k = 4 * lane;
            // Four warp steps at a time, their loads issued together: a warp with one load in flight moves too few
            // bytes to cover the memory's latency, and a decode matrix of 2048 rows has only 2048 warps.
            for (; k + 3 * step < shape.K; k += 4 * step)
            {
                var a = format.Four(w, n, k, shape.K).Times(norm, k);
                var b = format.Four(w, n, k + step, shape.K).Times(norm, k + step);
                var c = format.Four(w, n, k + 2 * step, shape.K).Times(norm, k + 2 * step);
                var d = format.Four(w, n, k + 3 * step, shape.K).Times(norm, k + 3 * step);
                partials = partials.Add(x, k, a).Add(x, k + step, b).Add(x, k + 2 * step, c).Add(x, k + 3 * step, d);
            }
            for (; k < shape.K; k += step)
                partials = partials.Add(x, k, format.Four(w, n, k, shape.K).Times(norm, k));
        }
        else
        {
            for (int k = lane; k < shape.K; k += Warp.WarpSize)
                partials = partials.Add(x, k, format.Weight(w, n, k, shape.K) * (norm.Length > 0 ? norm[k] : 1f));
        }
        return partials.SumOverWarp();
    }

    /// <summary>
    /// Each row's RMSNorm factor 1 / sqrt(mean(x²) + eps), as <see cref="NormKernels.RmsNorm"/> computes it, summed
    /// across the warp (every lane gets them); 1 for every row without a norm (an empty <paramref name="norm"/>). The
    /// warp reads x's rows for its dot products anyway, from cache: reading them once more here costs less than a
    /// launch that writes normalized rows for the products to read back.
    /// </summary>
    private static RowSums RowScales(ArrayView<float> x, ArrayView<float> norm, MatMulShape shape)
    {
        if (norm.Length == 0)
            return new RowSums(shape.M, shape.K, 1f, 1f, 1f, 1f, 1f, 1f, 1f, 1f);
        var squares = new RowSums(shape.M, shape.K);
        for (int k = Warp.LaneIdx; k < shape.K; k += Warp.WarpSize)
            squares = squares.AddSquares(x, k);
        return squares.SumOverWarp().NormFactors(shape.NormEps);
    }

    /// <summary>
    /// A lane's partial sums of one weight row's dot products with up to eight x rows of width <see cref="K"/>, in
    /// registers: fields, not an array, and every step a new value, which ILGPU keeps out of local memory.
    /// </summary>
    private readonly record struct RowSums(int Rows, int K,
        float Row0 = 0, float Row1 = 0, float Row2 = 0, float Row3 = 0, float Row4 = 0, float Row5 = 0, float Row6 = 0, float Row7 = 0)
    {
        public float this[int row] => row switch
        {
            0 => Row0, 1 => Row1, 2 => Row2, 3 => Row3, 4 => Row4, 5 => Row5, 6 => Row6, _ => Row7,
        };

        /// <summary>Adds four weights at k times each row's x[k .. k + 3].</summary>
        public RowSums Add(ArrayView<float> x, int k, WeightQuad w) => this with
        {
            Row0 = Row0 + w.Dot(x, k),
            Row1 = Rows > 1 ? Row1 + w.Dot(x, K + k) : 0,
            Row2 = Rows > 2 ? Row2 + w.Dot(x, 2L * K + k) : 0,
            Row3 = Rows > 3 ? Row3 + w.Dot(x, 3L * K + k) : 0,
            Row4 = Rows > 4 ? Row4 + w.Dot(x, 4L * K + k) : 0,
            Row5 = Rows > 5 ? Row5 + w.Dot(x, 5L * K + k) : 0,
            Row6 = Rows > 6 ? Row6 + w.Dot(x, 6L * K + k) : 0,
            Row7 = Rows > 7 ? Row7 + w.Dot(x, 7L * K + k) : 0,
        };

        /// <summary>Adds one weight at k times each row's x[k].</summary>
        public RowSums Add(ArrayView<float> x, int k, float w) => this with
        {
            Row0 = Row0 + w * x[k],
            Row1 = Rows > 1 ? Row1 + w * x[K + k] : 0,
            Row2 = Rows > 2 ? Row2 + w * x[2L * K + k] : 0,
            Row3 = Rows > 3 ? Row3 + w * x[3L * K + k] : 0,
            Row4 = Rows > 4 ? Row4 + w * x[4L * K + k] : 0,
            Row5 = Rows > 5 ? Row5 + w * x[5L * K + k] : 0,
            Row6 = Rows > 6 ? Row6 + w * x[6L * K + k] : 0,
            Row7 = Rows > 7 ? Row7 + w * x[7L * K + k] : 0,
        };

        /// <summary>Adds each row's x[k]².</summary>
        public RowSums AddSquares(ArrayView<float> x, int k) => this with
        {
            Row0 = Row0 + x[k] * x[k],
            Row1 = Rows > 1 ? Row1 + x[K + k] * x[K + k] : 0,
            Row2 = Rows > 2 ? Row2 + x[2L * K + k] * x[2L * K + k] : 0,
            Row3 = Rows > 3 ? Row3 + x[3L * K + k] * x[3L * K + k] : 0,
            Row4 = Rows > 4 ? Row4 + x[4L * K + k] * x[4L * K + k] : 0,
            Row5 = Rows > 5 ? Row5 + x[5L * K + k] * x[5L * K + k] : 0,
            Row6 = Rows > 6 ? Row6 + x[6L * K + k] * x[6L * K + k] : 0,
            Row7 = Rows > 7 ? Row7 + x[7L * K + k] * x[7L * K + k] : 0,
        };

        /// <summary>From each row's sum of squares, its RMSNorm factor 1 / sqrt(sum / K + eps).</summary>
        public RowSums NormFactors(float eps) => this with
        {
            Row0 = 1f / XMath.Sqrt(Row0 / K + eps),
            Row1 = 1f / XMath.Sqrt(Row1 / K + eps),
            Row2 = 1f / XMath.Sqrt(Row2 / K + eps),
            Row3 = 1f / XMath.Sqrt(Row3 / K + eps),
            Row4 = 1f / XMath.Sqrt(Row4 / K + eps),
            Row5 = 1f / XMath.Sqrt(Row5 / K + eps),
            Row6 = 1f / XMath.Sqrt(Row6 / K + eps),
            Row7 = 1f / XMath.Sqrt(Row7 / K + eps),
        };

        /// <summary>
        /// Every row's sum across the warp's lanes. Rows is the same for every lane, so each reduction runs on the
        /// whole warp or on none of it.
        /// </summary>
        public RowSums SumOverWarp() => this with
        {
            Row0 = WarpReduce.Sum(Row0),
            Row1 = Rows > 1 ? WarpReduce.Sum(Row1) : 0,
            Row2 = Rows > 2 ? WarpReduce.Sum(Row2) : 0,
            Row3 = Rows > 3 ? WarpReduce.Sum(Row3) : 0,
            Row4 = Rows > 4 ? WarpReduce.Sum(Row4) : 0,
            Row5 = Rows > 5 ? WarpReduce.Sum(Row5) : 0,
            Row6 = Rows > 6 ? WarpReduce.Sum(Row6) : 0,
            Row7 = Rows > 7 ? WarpReduce.Sum(Row7) : 0,
        };
    }

    /// <summary>Four floats held in registers: a blocked GEMM thread's sums for one row, or its four columns' weights at one k.</summary>
    private readonly record struct Float4(float V0, float V1, float V2, float V3)
    {
        /// <summary>This + a · b, lane by lane.</summary>
        public Float4 MultiplyAdd(float a, Float4 b) => new(V0 + a * b.V0, V1 + a * b.V1, V2 + a * b.V2, V3 + a * b.V3);
    }
}
