using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>How many x rows one GEMV pass carries; a struct so the JIT drops the code for absent rows.</summary>
internal interface IRowCount
{
    static abstract int Count { get; }
}

internal readonly struct OneRow : IRowCount { public static int Count => 1; }
internal readonly struct TwoRows : IRowCount { public static int Count => 2; }
internal readonly struct ThreeRows : IRowCount { public static int Count => 3; }
internal readonly struct FourRows : IRowCount { public static int Count => 4; }

/// <summary>
/// y[m, n] = x[m, k] · wᵀ for a few rows (decode). The weights are the whole cost: each panel is read
/// once, front to back, and every x row reuses each widened weight vector. Threads take contiguous runs of
/// panels so each streams one long sequential range.
/// </summary>
internal static unsafe class Gemv
{
    private const int W = PackedMatrix.PanelWidth;
    // Software prefetch 2 KiB ahead: with it the 4-row GEMV also reaches read bandwidth (it fell to ~75%
    // without, or at 512 B), and the others are unchanged or a little faster.
    private const int PrefetchBytes = 2048;

    public static void Run<TFormat>(float* x, int m, PackedMatrix w, float* y, WorkerPool pool, SimdLevel simd)
        where TFormat : IWeightFormat
    {
        int k = w.Cols, n = w.Rows;
        // Several runs per thread, so a thread that loses its core for a while does not hold up the rest.
        int tasks = Math.Min(w.Panels, 4 * pool.Threads);
        for (int r = 0; r < m; r += 4)
        {
            float* xr = x + (long)r * k, yr = y + (long)r * n;
            switch (m - r)
            {
                case 1: pool.For(tasks, new Body<TFormat, OneRow>(xr, w, yr, tasks, simd)); break;
                case 2: pool.For(tasks, new Body<TFormat, TwoRows>(xr, w, yr, tasks, simd)); break;
                case 3: pool.For(tasks, new Body<TFormat, ThreeRows>(xr, w, yr, tasks, simd)); break;
                default: pool.For(tasks, new Body<TFormat, FourRows>(xr, w, yr, tasks, simd)); break;
            }
        }
    }

    private readonly struct Body<TFormat, TRows>(float* x, PackedMatrix w, float* y, int tasks, SimdLevel simd) : IForBody
        where TFormat : IWeightFormat where TRows : struct, IRowCount
    {
        public void Invoke(int task)
        {
            int first = (int)((long)w.Panels * task / tasks);
            int end = (int)((long)w.Panels * (task + 1) / tasks);
            for (int p = first; p < end; p++)
            {
                int cols = Math.Min(W, w.Rows - p * W);
                switch (simd)
                {
                    case SimdLevel.Vector512: Panel512<TFormat, TRows>(x, w.Cols, w.Panel(p), y + p * W, w.Rows, cols); break;
                    case SimdLevel.Vector256: Panel256<TFormat, TRows>(x, w.Cols, w.Panel(p), y + p * W, w.Rows, cols); break;
                    default: PanelScalar<TFormat>(x, TRows.Count, w.Cols, w.Panel(p), y + p * W, w.Rows, cols); break;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Panel512<TFormat, TRows>(float* x, int k, byte* panel, float* y, int n, int cols)
        where TFormat : IWeightFormat where TRows : struct, IRowCount
    {
        float* x1 = x + k, x2 = x1 + k, x3 = x2 + k;
        var a0 = Vector512<float>.Zero; var b0 = a0; var a1 = a0; var b1 = a0;
        var a2 = a0; var b2 = a0; var a3 = a0; var b3 = a0;
        byte* step = panel;
        for (int i = 0; i < k; i++, step += TFormat.StepBytes)
        {
            if (Sse.IsSupported)
            {
                Sse.Prefetch0(step + PrefetchBytes);
                if (TFormat.StepBytes > 64)
                    Sse.Prefetch0(step + PrefetchBytes + 64);
            }
            TFormat.Load(step, out Vector512<float> lo, out Vector512<float> hi);
            var s = Vector512.Create(x[i]);
            a0 = Vector512.FusedMultiplyAdd(lo, s, a0); b0 = Vector512.FusedMultiplyAdd(hi, s, b0);
            if (TRows.Count > 1)
            {
                s = Vector512.Create(x1[i]);
                a1 = Vector512.FusedMultiplyAdd(lo, s, a1); b1 = Vector512.FusedMultiplyAdd(hi, s, b1);
            }
            if (TRows.Count > 2)
            {
                s = Vector512.Create(x2[i]);
                a2 = Vector512.FusedMultiplyAdd(lo, s, a2); b2 = Vector512.FusedMultiplyAdd(hi, s, b2);
            }
            if (TRows.Count > 3)
            {
                s = Vector512.Create(x3[i]);
                a3 = Vector512.FusedMultiplyAdd(lo, s, a3); b3 = Vector512.FusedMultiplyAdd(hi, s, b3);
            }
        }
        // No calls until the accumulators are stored: a vector live across a call would be spilled inside the loop.
        if (cols == W)
        {
            a0.Store(y); b0.Store(y + 16);
            if (TRows.Count > 1) { a1.Store(y + n); b1.Store(y + n + 16); }
            if (TRows.Count > 2) { a2.Store(y + 2L * n); b2.Store(y + 2L * n + 16); }
            if (TRows.Count > 3) { a3.Store(y + 3L * n); b3.Store(y + 3L * n + 16); }
            return;
        }
        float* tile = stackalloc float[4 * W];
        a0.Store(tile); b0.Store(tile + 16);
        a1.Store(tile + W); b1.Store(tile + W + 16);
        a2.Store(tile + 2 * W); b2.Store(tile + 2 * W + 16);
        a3.Store(tile + 3 * W); b3.Store(tile + 3 * W + 16);
        CopyRows(tile, TRows.Count, y, n, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Panel256<TFormat, TRows>(float* x, int k, byte* panel, float* y, int n, int cols)
        where TFormat : IWeightFormat where TRows : struct, IRowCount
    {
        // Four rows × four vectors would overflow the 16 AVX2 registers, so take the rows one by one:
        // the repeated panel reads hit L1, since one panel pass touches only k × 32 weights.
        float* tile = stackalloc float[W];
        for (int r = 0; r < TRows.Count; r++)
        {
            float* xr = x + (long)r * k;
            var a0 = Vector256<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
            byte* step = panel;
            for (int i = 0; i < k; i++, step += TFormat.StepBytes)
            {
                TFormat.Load(step, out Vector256<float> r0, out Vector256<float> r8, out Vector256<float> r16, out Vector256<float> r24);
                var s = Vector256.Create(xr[i]);
                a0 = Vector256.FusedMultiplyAdd(r0, s, a0);
                a1 = Vector256.FusedMultiplyAdd(r8, s, a1);
                a2 = Vector256.FusedMultiplyAdd(r16, s, a2);
                a3 = Vector256.FusedMultiplyAdd(r24, s, a3);
            }
            float* yr = y + (long)r * n;
            if (cols == W)
            {
                a0.Store(yr); a1.Store(yr + 8); a2.Store(yr + 16); a3.Store(yr + 24);
                continue;
            }
            a0.Store(tile); a1.Store(tile + 8); a2.Store(tile + 16); a3.Store(tile + 24);
            CopyRows(tile, 1, yr, n, cols);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PanelScalar<TFormat>(float* x, int rows, int k, byte* panel, float* y, int n, int cols)
        where TFormat : IWeightFormat
    {
        for (int r = 0; r < rows; r++)
        {
            float* xr = x + (long)r * k;
            for (int j = 0; j < cols; j++)
            {
                float sum = 0;
                byte* step = panel;
                for (int i = 0; i < k; i++, step += TFormat.StepBytes)
                    sum = MathF.FusedMultiplyAdd(xr[i], TFormat.Load(step, j), sum);
                y[(long)r * n + j] = sum;
            }
        }
    }

    /// <summary>The last panel of a matrix whose rows are not a multiple of 32: keep only the real outputs.</summary>
    private static void CopyRows(float* tile, int rows, float* y, int n, int cols)
    {
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
                y[(long)r * n + j] = tile[r * W + j];
    }
}
