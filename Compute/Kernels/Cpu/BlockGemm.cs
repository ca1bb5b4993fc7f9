using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// y[m, n] = x[m, k] · wᵀ for many rows (prefill) on weights kept as llama.cpp's row-major blocks, the way llama.cpp
/// computes it: x quantized to int8 per block (Q8_0's 32 values for the 32-element types, Q8_K's 256 for the k-quants,
/// as the GEMV does), each K slice of a weight panel unpacked to unsigned byte quants, integer dot products with AVX-VNNI,
/// and the integer sums scaled in float32 once per scale group.
/// </summary>
/// <remarks>
/// Every block type is scale · q + offset per scale group of 32 values of a row (Q6_K: 16; see <see cref="IBlockUnpack"/>),
/// so with x ≈ d_x · q_x,
///   y[i, j] = Σ over groups of (scale_j · Σ q_w · q_x + offset_j · Σ q_x) · d_x,i.
/// The slice holds the quants in the order vpdpbusd reads them (per 4 columns of k, 32 weight rows × 4 bytes, as
/// <see cref="Q8Panels"/>' groups): one 256-bit load covers 8 output columns, one broadcast 4 x quants. The micro-kernel
/// takes 4 x rows × 32 output columns, 16 int32 accumulators (AVX-VNNI in its EVEX form reaches 32 vector registers), and
/// flushes them into float32 at the end of each scale group. The flush shares ports with vpdpbusd, so it is kept short:
/// with a d_x per super-block the k-quants' groups add into a partial sum that d_x multiplies once per super-block (a
/// conversion and two FMAs per accumulator and group, where a d_x per group needs a multiply more; Q6_K's groups of 16
/// ran 18–20% faster, Q4_K's 3–7%). A vpdpbusd makes 32 multiply-adds where a float32 FMA makes 8 (16 at 512 bits), and
/// unpacking to bytes stores a quarter of what dequantizing to float32 does, so this runs well ahead of the float32 GEMM
/// that <see cref="RowBlockPanels"/> feeds, which stays the path without AVX-VNNI.
/// </remarks>
internal static unsafe class BlockGemm
{
    private const int W = PackedMatrix.PanelWidth;
    private const int Rows = 4;

    /// <summary>Bytes of one k-step of a slice: 4 columns of k for the panel's 32 weight rows.</summary>
    private const int StepBytes = W * 4;

    /// <summary>Whether this path runs here: AVX-VNNI present and not turned off by the options.</summary>
    public static bool Supported(GemmOptions options) =>
        options.Simd != SimdLevel.Scalar && options.Vnni && AvxVnni.IsSupported && Avx2.IsSupported;

    public static void Run(float* x, int m, PackedMatrix w, float* y, WorkerPool pool, GemmOptions options)
    {
        switch (w.StorageType)
        {
            case TensorDType.Q4_0: Run<Q4_0Unpack>(x, m, w, y, pool, options); break;
            case TensorDType.Q4_1: Run<Q4_1Unpack>(x, m, w, y, pool, options); break;
            case TensorDType.Q5_0: Run<Q5_0Unpack>(x, m, w, y, pool, options); break;
            case TensorDType.Q5_1: Run<Q5_1Unpack>(x, m, w, y, pool, options); break;
            case TensorDType.Q4_K: Run<Q4_KUnpack>(x, m, w, y, pool, options); break;
            case TensorDType.Q5_K: Run<Q5_KUnpack>(x, m, w, y, pool, options); break;
            case TensorDType.Q6_K: Run<Q6_KUnpack>(x, m, w, y, pool, options); break;
            default: throw new ArgumentException($"{w.StorageType} is not stored as row-major blocks", nameof(w));
        }
    }

    private static void Run<TBlock>(float* x, int m, PackedMatrix w, float* y, WorkerPool pool, GemmOptions options)
        where TBlock : IBlockUnpack
    {
        int k = w.Cols, group = Group<TBlock>(), groups = k / group;
        // x blocks as the GEMV's: Q8_0's 32 for the 32-element types, Q8_K's 256 for the k-quants (see the remarks).
        int xBlock = TBlock.Size == SuperBlocks.Size ? SuperBlocks.Size : Q8Block.Size;
        var activations = new QuantizedActivations(x, m, k, xBlock, pool);
        float* factors = Scratch.Current.Get(Scratch.PackedX, 2L * m * groups);
        pool.For(m, new FactorsBody(activations, group, groups, xBlock, factors));

        int rowBlocks = (m + Rows - 1) / Rows;
        var (rowChunks, blocksPerChunk) = Gemm.SplitRowBlocks(w.Panels, rowBlocks, pool.Threads);
        int kBlock = (options.KBlock + TBlock.Size - 1) / TBlock.Size * TBlock.Size;
        pool.For(w.Panels * rowChunks, new Body<TBlock>(activations, factors, m, w, y, rowBlocks, rowChunks, blocksPerChunk, kBlock));
    }

    /// <summary>
    /// Per x row and scale group, the two factors of the flush: d_x, and what the offsets multiply: d_x · Σ q_x where x
    /// has a scale per group, Σ q_x where it has one per super-block (d_x then multiplies once per super-block).
    /// </summary>
    private readonly struct FactorsBody(QuantizedActivations x, int group, int groups, int xBlock, float* factors) : IForBody
    {
        public void Invoke(int r)
        {
            var row = x.Row(r);
            float* f = factors + 2L * r * groups;
            for (int g = 0; g < groups; g++)
            {
                float dx = row.Scales[g * group / xBlock];
                float sum = group == Q8Block.Size ? row.Sums32[g] : row.Sums[g];
                f[2 * g] = dx;
                f[2 * g + 1] = xBlock == group ? dx * sum : sum;
            }
        }
    }

    /// <summary>Columns per scale group: 32, or 16 for Q6_K.</summary>
    private static int Group<TBlock>() where TBlock : IBlockUnpack => UnpackedRows.PieceColumns / TBlock.GroupsPerPiece;

    /// <summary>One task: one panel's K slices unpacked in turn, each multiplied into a run of 4-row x blocks.</summary>
    private readonly struct Body<TBlock>(
        QuantizedActivations x, float* factors, int m, PackedMatrix w, float* y, int rowBlocks, int rowChunks, int blocksPerChunk, int kBlock)
        : IForBody where TBlock : IBlockUnpack
    {
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Invoke(int task)
        {
            int n = w.Rows, k = w.Cols, group = Group<TBlock>(), groups = k / group;
            int p = task / rowChunks;
            int block0 = task % rowChunks * blocksPerChunk;
            int block1 = Math.Min(block0 + blocksPerChunk, rowBlocks);
            var scratch = Scratch.Current;
            // The slice: kBlock / 4 k-steps of quants, then per scale group the 32 rows' scales and offsets.
            int sliceGroups = kBlock / group;
            byte* quants = (byte*)scratch.Get(Scratch.Slice, (long)kBlock * W / sizeof(float) + 2L * sliceGroups * W);
            float* scales = (float*)(quants + (long)kBlock * W);
            float* offsets = scales + sliceGroups * W;
            // The task's rows × 32 outputs, summed over the slices in a tile of their own (y's rows, n floats apart, fall in
            // the same few L1 sets), copied out at the end; rows past m are computed on row m − 1 and dropped.
            int firstRow = block0 * Rows, rows = (block1 - block0) * Rows;
            float* sums = scratch.Get(Scratch.Tile, (long)rows * W);
            new Span<float>(sums, rows * W).Clear();
            // A tile's sums over the groups of one x super-block, before its d_x (x with a scale per super-block only).
            float* partial = stackalloc float[Rows * W];
            new Span<float>(partial, Rows * W).Clear();
            int groupsPerX = x.BlockSize / group;

            for (int k0 = 0; k0 < k; k0 += kBlock)
            {
                int kc = Math.Min(kBlock, k - k0);
                Unpack<TBlock>(w, p, k0, kc, quants, scales, offsets);
                for (int b = block0; b < block1; b++)
                {
                    int r0 = b * Rows;
                    var tile = new TileRows(
                        Quants(r0, k0), Quants(r0 + 1, k0), Quants(r0 + 2, k0), Quants(r0 + 3, k0),
                        Factors(r0, k0, group, groups), Factors(r0 + 1, k0, group, groups), Factors(r0 + 2, k0, group, groups), Factors(r0 + 3, k0, group, groups),
                        Sums(r0), Sums(r0 + 1), Sums(r0 + 2), Sums(r0 + 3));
                    Tile(tile, quants, scales, offsets, kc, group, groupsPerX, partial);
                }
            }

            int cols = Math.Min(W, n - p * W);
            for (int r = firstRow; r < Math.Min(block1 * Rows, m); r++)
            {
                float* source = sums + (long)(r - firstRow) * W, target = y + (long)r * n + p * W;
                if (cols == W)
                    for (int c = 0; c < W; c += 8)
                        Vector256.Load(source + c).Store(target + c);
                else
                    new ReadOnlySpan<float>(source, cols).CopyTo(new Span<float>(target, cols));
            }

            float* Sums(int row) => sums + (long)(row - firstRow) * W;
        }

        private sbyte* Quants(int row, int k0) => x.Row(Math.Min(row, m - 1)).Quants + k0;

        private float* Factors(int row, int k0, int group, int groups) => factors + 2L * Math.Min(row, m - 1) * groups + 2 * (k0 / group);
    }

    /// <summary>One micro-kernel call's 4 x rows: their int8 quants and flush factors from the slice's start, and their outputs.</summary>
    private readonly struct TileRows(sbyte* x0, sbyte* x1, sbyte* x2, sbyte* x3, float* f0, float* f1, float* f2, float* f3,
        float* c0, float* c1, float* c2, float* c3)
    {
        public readonly sbyte* X0 = x0, X1 = x1, X2 = x2, X3 = x3;
        public readonly float* F0 = f0, F1 = f1, F2 = f2, F3 = f3;
        public readonly float* C0 = c0, C1 = c1, C2 = c2, C3 = c3;
    }

    /// <summary>
    /// Columns [k0, k0 + kc) of the panel's 32 weight rows as unsigned byte quants, k-step by k-step (see
    /// <see cref="StepBytes"/>), and each scale group's 32 scales and offsets; Q6_K's quants take their bias back in
    /// the offset. Rows past the matrix are the zero padding: scale 0, offset 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unpack<TBlock>(PackedMatrix w, int p, int k0, int kc, byte* quants, float* scales, float* offsets)
        where TBlock : IBlockUnpack
    {
        const int R = UnpackedRows.Rows;
        int pieces = TBlock.Size / UnpackedRows.PieceColumns, group = Group<TBlock>();
        // Sized for the largest type (a super-block: 8 pieces, Q6_K's 16 groups).
        byte* rowQuants = stackalloc byte[8 * UnpackedRows.PieceBytes];
        float* rowScales = stackalloc float[16 * R];
        float* rowOffsets = stackalloc float[16 * R];
        long rowBytes = w.RowBytes;
        byte* first = w.Panel(p) + (long)(k0 / TBlock.Size) * TBlock.Bytes;
        for (int b = 0; b < kc / TBlock.Size; b++)
        {
            for (int c8 = 0; c8 < W / R; c8++)
            {
                byte* block = first + c8 * R * rowBytes + (long)b * TBlock.Bytes;
                TBlock.Unpack(block, rowBytes, rowQuants, rowScales, rowOffsets);
                for (int s = 0; s < pieces; s++)
                {
                    int column = b * TBlock.Size + s * UnpackedRows.PieceColumns;
                    // 8 weight rows × 32 quant bytes into 8 k-steps of 8 rows × 4 bytes, made unsigned.
                    BlockBits.TransposeWords(rowQuants + s * UnpackedRows.PieceBytes, quants + (long)column / 4 * StepBytes + 4 * R * c8, StepBytes, (byte)TBlock.QuantBias);
                    for (int j = 0; j < TBlock.GroupsPerPiece; j++)
                    {
                        var scale = Vector256.Load(rowScales + R * (s * TBlock.GroupsPerPiece + j));
                        var offset = Vector256.Load(rowOffsets + R * (s * TBlock.GroupsPerPiece + j));
                        int target = (column / group + j) * W + R * c8;
                        scale.Store(scales + target);
                        (offset - scale * TBlock.QuantBias).Store(offsets + target);
                    }
                }
            }
        }
    }

    /// <summary>The tile's 4 x rows times the slice's 32 weight rows, added into the rows' outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(in TileRows rows, byte* quants, float* scales, float* offsets, int kc, int group, int groupsPerX, float* partial)
    {
        sbyte* x0 = rows.X0, x1 = rows.X1, x2 = rows.X2, x3 = rows.X3;
        int steps = group / 4;
        for (int g = 0, at = 0; g < kc / group; g++)
        {
            var a00 = Vector256<int>.Zero; var a01 = a00; var a02 = a00; var a03 = a00;
            var a10 = a00; var a11 = a00; var a12 = a00; var a13 = a00;
            var a20 = a00; var a21 = a00; var a22 = a00; var a23 = a00;
            var a30 = a00; var a31 = a00; var a32 = a00; var a33 = a00;
            for (int t = 0; t < steps; t++, at += 4, quants += StepBytes)
            {
                var w0 = Vector256.Load(quants);
                var w1 = Vector256.Load(quants + 32);
                var w2 = Vector256.Load(quants + 64);
                var w3 = Vector256.Load(quants + 96);
                var b = Vector256.Create(*(int*)(x0 + at)).AsSByte();
                a00 = AvxVnni.MultiplyWideningAndAdd(a00, w0, b);
                a01 = AvxVnni.MultiplyWideningAndAdd(a01, w1, b);
                a02 = AvxVnni.MultiplyWideningAndAdd(a02, w2, b);
                a03 = AvxVnni.MultiplyWideningAndAdd(a03, w3, b);
                b = Vector256.Create(*(int*)(x1 + at)).AsSByte();
                a10 = AvxVnni.MultiplyWideningAndAdd(a10, w0, b);
                a11 = AvxVnni.MultiplyWideningAndAdd(a11, w1, b);
                a12 = AvxVnni.MultiplyWideningAndAdd(a12, w2, b);
                a13 = AvxVnni.MultiplyWideningAndAdd(a13, w3, b);
                b = Vector256.Create(*(int*)(x2 + at)).AsSByte();
                a20 = AvxVnni.MultiplyWideningAndAdd(a20, w0, b);
                a21 = AvxVnni.MultiplyWideningAndAdd(a21, w1, b);
                a22 = AvxVnni.MultiplyWideningAndAdd(a22, w2, b);
                a23 = AvxVnni.MultiplyWideningAndAdd(a23, w3, b);
                b = Vector256.Create(*(int*)(x3 + at)).AsSByte();
                a30 = AvxVnni.MultiplyWideningAndAdd(a30, w0, b);
                a31 = AvxVnni.MultiplyWideningAndAdd(a31, w1, b);
                a32 = AvxVnni.MultiplyWideningAndAdd(a32, w2, b);
                a33 = AvxVnni.MultiplyWideningAndAdd(a33, w3, b);
            }
            float* s = scales + g * W, o = offsets + g * W;
            if (groupsPerX == 1)
            {
                Flush(rows.C0, s, o, rows.F0 + 2 * g, a00, a01, a02, a03);
                Flush(rows.C1, s, o, rows.F1 + 2 * g, a10, a11, a12, a13);
                Flush(rows.C2, s, o, rows.F2 + 2 * g, a20, a21, a22, a23);
                Flush(rows.C3, s, o, rows.F3 + 2 * g, a30, a31, a32, a33);
                continue;
            }
            Gather(partial, s, o, rows.F0[2 * g + 1], a00, a01, a02, a03);
            Gather(partial + W, s, o, rows.F1[2 * g + 1], a10, a11, a12, a13);
            Gather(partial + 2 * W, s, o, rows.F2[2 * g + 1], a20, a21, a22, a23);
            Gather(partial + 3 * W, s, o, rows.F3[2 * g + 1], a30, a31, a32, a33);
            if ((g + 1) % groupsPerX == 0)
            {
                Settle(rows.C0, partial, rows.F0[2 * g]);
                Settle(rows.C1, partial + W, rows.F1[2 * g]);
                Settle(rows.C2, partial + 2 * W, rows.F2[2 * g]);
                Settle(rows.C3, partial + 3 * W, rows.F3[2 * g]);
            }
        }
    }

    /// <summary>One x row's 32 integer sums of a group into its super-block partial: p += sum · scale + offset · Σ q_x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Gather(float* p, float* scales, float* offsets, float xSum,
        Vector256<int> s0, Vector256<int> s8, Vector256<int> s16, Vector256<int> s24)
    {
        var sum = Vector256.Create(xSum);
        Gather(p, scales, offsets, sum, s0);
        Gather(p + 8, scales + 8, offsets + 8, sum, s8);
        Gather(p + 16, scales + 16, offsets + 16, sum, s16);
        Gather(p + 24, scales + 24, offsets + 24, sum, s24);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Gather(float* p, float* scales, float* offsets, Vector256<float> xSum, Vector256<int> sum)
    {
        var withOffset = Vector256.FusedMultiplyAdd(Vector256.Load(offsets), xSum, Vector256.Load(p));
        Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sum), Vector256.Load(scales), withOffset).Store(p);
    }

    /// <summary>A finished super-block's partial times d_x into the row's outputs (c += p · d_x), and the partial cleared.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Settle(float* c, float* p, float dx)
    {
        var d = Vector256.Create(dx);
        for (int i = 0; i < W; i += 8)
        {
            Vector256.FusedMultiplyAdd(Vector256.Load(p + i), d, Vector256.Load(c + i)).Store(c + i);
            Vector256<float>.Zero.Store(p + i);
        }
    }

    /// <summary>One x row's 32 integer sums of a scale group into its floats: c += sum · (scale · d_x) + offset · (d_x · Σ q_x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Flush(float* c, float* scales, float* offsets, float* factors,
        Vector256<int> s0, Vector256<int> s8, Vector256<int> s16, Vector256<int> s24)
    {
        var dx = Vector256.Create(factors[0]);
        var dxSum = Vector256.Create(factors[1]);
        Add(c, scales, offsets, dx, dxSum, s0);
        Add(c + 8, scales + 8, offsets + 8, dx, dxSum, s8);
        Add(c + 16, scales + 16, offsets + 16, dx, dxSum, s16);
        Add(c + 24, scales + 24, offsets + 24, dx, dxSum, s24);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add(float* c, float* scales, float* offsets, Vector256<float> dx, Vector256<float> dxSum, Vector256<int> sum)
    {
        var withOffset = Vector256.FusedMultiplyAdd(Vector256.Load(offsets), dxSum, Vector256.Load(c));
        Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sum), Vector256.Load(scales) * dx, withOffset).Store(c);
    }
}
