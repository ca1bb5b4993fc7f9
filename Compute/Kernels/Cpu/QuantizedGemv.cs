using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// y[m, n] = x[m, k] · wᵀ for a few rows on Q8_0 weights, as llama.cpp computes it: each x row is quantized
/// to Q8_0 too (per 32 values: d = max|x| / 127 rounded to f16, q = round(x / d)), a block's products are
/// summed exactly in int32, and only the block sums are scaled (by d_w · d_x) and added in float32.
/// </summary>
/// <remarks>
/// The weights are read once, front to back, as in <see cref="Gemv"/>; each panel block (32 rows × 32
/// columns, 1088 bytes) stays in L1 while every x row takes its 32 integer dot products from it. With
/// AVX-VNNI one vpdpbusd multiplies 8 rows × 4 columns and sums into int32; without it the same sums come
/// from widened int32 products, portably.
/// </remarks>
internal static unsafe class QuantizedGemv
{
    private const int W = PackedMatrix.PanelWidth;
    private const int PrefetchBytes = 2048;

    public static void Run(float* x, int m, PackedMatrix w, float* y, WorkerPool pool, GemmOptions options)
    {
        int k = w.Cols, blocks = k / Q8Block.Size;
        // Quantized rows: k quants, then per block the f16-rounded scale and 128 × Σq (the offset's share).
        int rowBytes = k + blocks * (sizeof(float) + sizeof(int));
        byte* rows = (byte*)Scratch.Current.Get(Scratch.QuantizedX, ((long)m * rowBytes + 3) / 4);
        for (int r = 0; r < m; r++)
            QuantizeRow(x + (long)r * k, k, rows + (long)r * rowBytes);

        int tasks = Math.Min(w.Panels, 4 * pool.Threads);
        var kind = options.Simd == SimdLevel.Scalar ? Kind.Scalar : options.Vnni && AvxVnni.IsSupported ? Kind.Vnni : Kind.Portable;
        for (int r = 0; r < m; r += 4)
        {
            var body = new Rows(rows + (long)r * rowBytes, rowBytes, w, y + (long)r * w.Rows, tasks, kind);
            switch (m - r)
            {
                case 1: Dispatch<OneRow>(pool, tasks, body); break;
                case 2: Dispatch<TwoRows>(pool, tasks, body); break;
                case 3: Dispatch<ThreeRows>(pool, tasks, body); break;
                default: Dispatch<FourRows>(pool, tasks, body); break;
            }
        }
    }

    private enum Kind { Scalar, Portable, Vnni }

    /// <summary>What every task of one pass shares: up to 4 quantized x rows and the weights.</summary>
    private readonly struct Rows(byte* x, int rowBytes, PackedMatrix w, float* y, int tasks, Kind kind)
    {
        public byte* X => x;
        public int RowBytes => rowBytes;
        public PackedMatrix W => w;
        public float* Y => y;
        public int Tasks => tasks;
        public Kind Kind => kind;
    }

    private static void Dispatch<TRows>(WorkerPool pool, int tasks, Rows rows) where TRows : struct, IRowCount
    {
        switch (rows.Kind)
        {
            case Kind.Vnni: pool.For(tasks, new Body<VnniDot, TRows>(rows)); break;
            case Kind.Portable: pool.For(tasks, new Body<PortableDot, TRows>(rows)); break;
            default: pool.For(tasks, new ScalarBody(rows, TRows.Count)); break;
        }
    }

    /// <summary>One x row as Q8_0: the quants, then the scales, then 128 × each block's quant sum.</summary>
    internal static void QuantizeRow(float* x, int k, byte* row)
    {
        int blocks = k / Q8Block.Size;
        sbyte* q = (sbyte*)row;
        float* scales = (float*)(row + k);
        int* offsets = (int*)(scales + blocks);
        int* sums = stackalloc int[Q8Block.Size / QuantizedActivations.SumGroup];
        for (int b = 0; b < blocks; b++)
        {
            float d = QuantizedActivations.QuantizeBlock(x + b * Q8Block.Size, Q8Block.Size, q + b * Q8Block.Size, sums);
            scales[b] = WeightConvert.FromF16(WeightConvert.ToF16(d));
            offsets[b] = 128 * (sums[0] + sums[1]);
        }
    }

    private readonly struct Body<TDot, TRows>(Rows rows) : IForBody where TDot : IByteDot where TRows : struct, IRowCount
    {
        public void Invoke(int task)
        {
            var w = rows.W;
            int first = (int)((long)w.Panels * task / rows.Tasks);
            int end = (int)((long)w.Panels * (task + 1) / rows.Tasks);
            for (int p = first; p < end; p++)
            {
                int cols = Math.Min(W, w.Rows - p * W);
                if (TRows.Count == 4)
                {
                    // Two passes of two rows: four rows' 16 accumulators and the VNNI operands do not fit the 16
                    // registers VEX-encoded vpdpbusd can name, and the spills cost more than reading the panel again
                    // from L2 (32 rows × k bytes: 64 KiB at k = 2048), which the first pass brought in from memory.
                    Panel<TDot, TwoRows>(rows.X, rows.RowBytes, w.Cols, w.Panel(p), rows.Y + p * W, w.Rows, cols);
                    Panel<TDot, TwoRows>(rows.X + 2L * rows.RowBytes, rows.RowBytes, w.Cols, w.Panel(p), rows.Y + 2L * w.Rows + p * W, w.Rows, cols);
                }
                else
                    Panel<TDot, TRows>(rows.X, rows.RowBytes, w.Cols, w.Panel(p), rows.Y + p * W, w.Rows, cols);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Panel<TDot, TRows>(byte* x, int rowBytes, int k, byte* panel, float* y, int n, int cols)
        where TDot : IByteDot where TRows : struct, IRowCount
    {
        int blocks = k / Q8Block.Size;
        byte* x1 = x + rowBytes, x2 = x1 + rowBytes, x3 = x2 + rowBytes;
        var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
        var c0 = a0; var c1 = a0; var c2 = a0; var c3 = a0;
        var e0 = a0; var e1 = a0; var e2 = a0; var e3 = a0;
        byte* block = panel;
        for (int i = 0; i < blocks; i++, block += Q8Panels.BlockBytes)
        {
            if (Sse.IsSupported)
                for (int line = 0; line < Q8Panels.BlockBytes; line += 64)
                    Sse.Prefetch0(block + PrefetchBytes + line);
            F16Weights.Load(block, out Vector256<float> d0, out Vector256<float> d8, out Vector256<float> d16, out Vector256<float> d24);
            Accumulate<TDot>(block, x, k, i, d0, d8, d16, d24, ref a0, ref a1, ref a2, ref a3);
            if (TRows.Count > 1) Accumulate<TDot>(block, x1, k, i, d0, d8, d16, d24, ref b0, ref b1, ref b2, ref b3);
            if (TRows.Count > 2) Accumulate<TDot>(block, x2, k, i, d0, d8, d16, d24, ref c0, ref c1, ref c2, ref c3);
            if (TRows.Count > 3) Accumulate<TDot>(block, x3, k, i, d0, d8, d16, d24, ref e0, ref e1, ref e2, ref e3);
        }
        float* tile = stackalloc float[4 * W];
        Store(a0, a1, a2, a3, tile);
        if (TRows.Count > 1) Store(b0, b1, b2, b3, tile + W);
        if (TRows.Count > 2) Store(c0, c1, c2, c3, tile + 2 * W);
        if (TRows.Count > 3) Store(e0, e1, e2, e3, tile + 3 * W);
        for (int r = 0; r < TRows.Count; r++)
            new ReadOnlySpan<float>(tile + r * W, cols).CopyTo(new Span<float>(y + (long)r * n, cols));
    }

    /// <summary>One x row against one panel block: 32 int32 dot products, offset removed, scaled, added.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate<TDot>(byte* block, byte* x, int k, int i,
        Vector256<float> d0, Vector256<float> d8, Vector256<float> d16, Vector256<float> d24,
        ref Vector256<float> y0, ref Vector256<float> y8, ref Vector256<float> y16, ref Vector256<float> y24) where TDot : IByteDot
    {
        int* quants = (int*)(x + i * Q8Block.Size);
        var s0 = Vector256<int>.Zero; var s8 = s0; var s16 = s0; var s24 = s0;
        byte* group = block + Q8Panels.ScaleBytes;
        for (int g = 0; g < Q8Panels.Groups; g++, group += Q8Panels.GroupBytes)
        {
            var xs = Vector256.Create(quants[g]).AsSByte();
            s0 = TDot.Add(s0, Vector256.Load(group), xs);
            s8 = TDot.Add(s8, Vector256.Load(group + 32), xs);
            s16 = TDot.Add(s16, Vector256.Load(group + 64), xs);
            s24 = TDot.Add(s24, Vector256.Load(group + 96), xs);
        }
        float* scales = (float*)(x + k);
        var offset = Vector256.Create(((int*)(scales + k / Q8Block.Size))[i]);
        var dx = Vector256.Create(scales[i]);
        y0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s0 - offset), d0 * dx, y0);
        y8 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s8 - offset), d8 * dx, y8);
        y16 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s16 - offset), d16 * dx, y16);
        y24 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s24 - offset), d24 * dx, y24);
    }

    private static void Store(Vector256<float> y0, Vector256<float> y8, Vector256<float> y16, Vector256<float> y24, float* tile)
    {
        y0.Store(tile); y8.Store(tile + 8); y16.Store(tile + 16); y24.Store(tile + 24);
    }

    /// <summary>The same sums one weight at a time: the reference the vector paths are tested against.</summary>
    private readonly struct ScalarBody(Rows rows, int count) : IForBody
    {
        public void Invoke(int task)
        {
            var w = rows.W;
            int k = w.Cols, blocks = k / Q8Block.Size;
            int first = (int)((long)w.Panels * task / rows.Tasks);
            int end = (int)((long)w.Panels * (task + 1) / rows.Tasks);
            for (int p = first; p < end; p++)
            {
                byte* panel = w.Panel(p);
                for (int r = 0; r < count; r++)
                {
                    byte* x = rows.X + (long)r * rows.RowBytes;
                    float* scales = (float*)(x + k);
                    int* offsets = (int*)(scales + blocks);
                    for (int j = 0; j < Math.Min(W, w.Rows - p * W); j++)
                    {
                        float sum = 0;
                        for (int b = 0; b < blocks; b++)
                        {
                            byte* block = panel + (long)b * Q8Panels.BlockBytes;
                            int dot = 0;
                            for (int c = 0; c < Q8Block.Size; c++)
                                dot += block[Q8Panels.ScaleBytes + c / Q8Panels.GroupColumns * Q8Panels.GroupBytes + j * Q8Panels.GroupColumns + c % Q8Panels.GroupColumns]
                                    * ((sbyte*)x)[b * Q8Block.Size + c];
                            sum = MathF.FusedMultiplyAdd(dot - offsets[b], F16Weights.Load(block, j) * scales[b], sum);
                        }
                        rows.Y[(long)r * w.Rows + p * W + j] = sum;
                    }
                }
            }
        }
    }
}
