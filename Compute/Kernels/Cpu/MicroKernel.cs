using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// The GEMM inner kernel: an 8×32 tile of y += (8 packed x rows) · (one float32 panel slice)ᵀ over kc steps.
/// </summary>
/// <remarks>
/// Vector512: 16 accumulators, 2 weight vectors and a broadcast fit in AVX-512's 32 registers, and each
/// k-step does 16 FMAs for 2 weight loads and 8 broadcasts. Vector256 has only 16 registers, so it covers
/// the tile as four 4×16 quarters (8 accumulators each). The kernels skip tiering (AggressiveOptimization):
/// the first prefill should not run unoptimised code, and they have nothing for dynamic PGO to learn.
/// </remarks>
internal static unsafe class MicroKernel
{
    public const int Rows = 8;
    private const int W = PackedMatrix.PanelWidth;

    /// <param name="x">kc steps of 8 x values ([kc][8]).</param>
    /// <param name="w">kc steps of 32 float32 weights ([kc][32]).</param>
    /// <param name="c">The tile's first element; rows are <paramref name="ldc"/> floats apart.</param>
    /// <param name="accumulate">Add to c (a later K block) rather than overwrite it.</param>
    public static void Run(SimdLevel simd, float* x, float* w, int kc, float* c, int ldc, bool accumulate)
    {
        switch (simd)
        {
            case SimdLevel.Vector512:
                Run512<F32Weights>(x, w, kc, c, ldc, accumulate);
                break;
            case SimdLevel.Vector256:
                for (int rows = 0; rows < Rows; rows += 4)
                    for (int cols = 0; cols < W; cols += 16)
                        Run256(x + rows, w + cols, kc, c + (long)rows * ldc + cols, ldc, accumulate);
                break;
            default:
                RunScalar(x, w, kc, c, ldc, accumulate);
                break;
        }
    }

    /// <summary>Widens kc 16-bit panel steps into a float32 slice [kc][32]; returns the slice.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float* Widen<TFormat>(byte* steps, int kc, float* slice, SimdLevel simd) where TFormat : IWeightFormat
    {
        float* dst = slice;
        if (simd == SimdLevel.Vector512)
        {
            for (int i = 0; i < kc; i++, steps += TFormat.StepBytes, dst += W)
            {
                TFormat.Load(steps, out Vector512<float> a, out Vector512<float> b);
                a.Store(dst);
                b.Store(dst + 16);
            }
        }
        else if (simd == SimdLevel.Vector256)
        {
            for (int i = 0; i < kc; i++, steps += TFormat.StepBytes, dst += W)
            {
                TFormat.Load(steps, out Vector256<float> r0, out Vector256<float> r8, out Vector256<float> r16, out Vector256<float> r24);
                r0.Store(dst);
                r8.Store(dst + 8);
                r16.Store(dst + 16);
                r24.Store(dst + 24);
            }
        }
        else
        {
            for (int i = 0; i < kc; i++, steps += TFormat.StepBytes, dst += W)
                for (int r = 0; r < W; r++)
                    dst[r] = TFormat.Load(steps, r);
        }
        return slice;
    }

    /// <summary>
    /// Vector512 kernel reading the panel steps in their stored format and widening them in registers: the
    /// GEMM uses it for 16-bit weights when a slice serves only one row block, where widening it into a
    /// float32 slice first would cost more than it saves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run512<TFormat>(float* x, void* w, int kc, float* c, int ldc, bool accumulate) where TFormat : IWeightFormat
    {
        float* c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc, c6 = c5 + ldc, c7 = c6 + ldc;
        Vector512<float> a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51, a60, a61, a70, a71;
        if (accumulate)
        {
            a00 = Vector512.Load(c); a01 = Vector512.Load(c + 16);
            a10 = Vector512.Load(c1); a11 = Vector512.Load(c1 + 16);
            a20 = Vector512.Load(c2); a21 = Vector512.Load(c2 + 16);
            a30 = Vector512.Load(c3); a31 = Vector512.Load(c3 + 16);
            a40 = Vector512.Load(c4); a41 = Vector512.Load(c4 + 16);
            a50 = Vector512.Load(c5); a51 = Vector512.Load(c5 + 16);
            a60 = Vector512.Load(c6); a61 = Vector512.Load(c6 + 16);
            a70 = Vector512.Load(c7); a71 = Vector512.Load(c7 + 16);
        }
        else
        {
            a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = Vector512<float>.Zero;
            a40 = a41 = a50 = a51 = a60 = a61 = a70 = a71 = Vector512<float>.Zero;
        }
        byte* step = (byte*)w;
        for (int i = 0; i < kc; i++, x += Rows, step += TFormat.StepBytes)
        {
            TFormat.Load(step, out Vector512<float> w0, out Vector512<float> w1);
            var b = Vector512.Create(x[0]);
            a00 = Vector512.FusedMultiplyAdd(w0, b, a00); a01 = Vector512.FusedMultiplyAdd(w1, b, a01);
            b = Vector512.Create(x[1]);
            a10 = Vector512.FusedMultiplyAdd(w0, b, a10); a11 = Vector512.FusedMultiplyAdd(w1, b, a11);
            b = Vector512.Create(x[2]);
            a20 = Vector512.FusedMultiplyAdd(w0, b, a20); a21 = Vector512.FusedMultiplyAdd(w1, b, a21);
            b = Vector512.Create(x[3]);
            a30 = Vector512.FusedMultiplyAdd(w0, b, a30); a31 = Vector512.FusedMultiplyAdd(w1, b, a31);
            b = Vector512.Create(x[4]);
            a40 = Vector512.FusedMultiplyAdd(w0, b, a40); a41 = Vector512.FusedMultiplyAdd(w1, b, a41);
            b = Vector512.Create(x[5]);
            a50 = Vector512.FusedMultiplyAdd(w0, b, a50); a51 = Vector512.FusedMultiplyAdd(w1, b, a51);
            b = Vector512.Create(x[6]);
            a60 = Vector512.FusedMultiplyAdd(w0, b, a60); a61 = Vector512.FusedMultiplyAdd(w1, b, a61);
            b = Vector512.Create(x[7]);
            a70 = Vector512.FusedMultiplyAdd(w0, b, a70); a71 = Vector512.FusedMultiplyAdd(w1, b, a71);
        }
        a00.Store(c); a01.Store(c + 16);
        a10.Store(c1); a11.Store(c1 + 16);
        a20.Store(c2); a21.Store(c2 + 16);
        a30.Store(c3); a31.Store(c3 + 16);
        a40.Store(c4); a41.Store(c4 + 16);
        a50.Store(c5); a51.Store(c5 + 16);
        a60.Store(c6); a61.Store(c6 + 16);
        a70.Store(c7); a71.Store(c7 + 16);
    }

    /// <summary>A 4-row × 16-column quarter: x and w point at the quarter's first row and column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run256(float* x, float* w, int kc, float* c, int ldc, bool accumulate)
    {
        float* c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
        Vector256<float> a00, a01, a10, a11, a20, a21, a30, a31;
        if (accumulate)
        {
            a00 = Vector256.Load(c); a01 = Vector256.Load(c + 8);
            a10 = Vector256.Load(c1); a11 = Vector256.Load(c1 + 8);
            a20 = Vector256.Load(c2); a21 = Vector256.Load(c2 + 8);
            a30 = Vector256.Load(c3); a31 = Vector256.Load(c3 + 8);
        }
        else
        {
            a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = Vector256<float>.Zero;
        }
        for (int i = 0; i < kc; i++, x += Rows, w += W)
        {
            var w0 = Vector256.Load(w);
            var w1 = Vector256.Load(w + 8);
            var b = Vector256.Create(x[0]);
            a00 = Vector256.FusedMultiplyAdd(w0, b, a00); a01 = Vector256.FusedMultiplyAdd(w1, b, a01);
            b = Vector256.Create(x[1]);
            a10 = Vector256.FusedMultiplyAdd(w0, b, a10); a11 = Vector256.FusedMultiplyAdd(w1, b, a11);
            b = Vector256.Create(x[2]);
            a20 = Vector256.FusedMultiplyAdd(w0, b, a20); a21 = Vector256.FusedMultiplyAdd(w1, b, a21);
            b = Vector256.Create(x[3]);
            a30 = Vector256.FusedMultiplyAdd(w0, b, a30); a31 = Vector256.FusedMultiplyAdd(w1, b, a31);
        }
        a00.Store(c); a01.Store(c + 8);
        a10.Store(c1); a11.Store(c1 + 8);
        a20.Store(c2); a21.Store(c2 + 8);
        a30.Store(c3); a31.Store(c3 + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunScalar(float* x, float* w, int kc, float* c, int ldc, bool accumulate)
    {
        for (int r = 0; r < Rows; r++)
        {
            float* cr = c + (long)r * ldc;
            for (int j = 0; j < W; j++)
            {
                float sum = accumulate ? cr[j] : 0f;
                for (int i = 0; i < kc; i++)
                    sum = MathF.FusedMultiplyAdd(x[i * Rows + r], w[i * W + j], sum);
                cr[j] = sum;
            }
        }
    }
}
