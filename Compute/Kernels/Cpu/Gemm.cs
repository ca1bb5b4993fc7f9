using System.Numerics.Tensors;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>y[m, w.Rows] = x[m, w.Cols] · wᵀ on the CPU.</summary>
public static class Gemm
{
    public static void Multiply(ReadOnlySpan<float> x, int m, PackedMatrix w, Span<float> y, WorkerPool pool)
    {
        int n = w.Rows, k = w.Cols;
        if (x.Length < m * k || y.Length < m * n)
            throw new ArgumentException($"GEMM shapes: x has {x.Length} floats for [{m}, {k}], y has {y.Length} for [{m}, {n}]");
        unsafe
        {
            fixed (float* px = x, py = y)
            {
                float* xp = px, yp = py;
                pool.For(m, i =>
                {
                    var xi = new ReadOnlySpan<float>(xp + (long)i * k, k);
                    var wd = w.Data;
                    for (int j = 0; j < n; j++)
                        yp[(long)i * n + j] = TensorPrimitives.Dot(xi, wd.Slice(j * k, k));
                });
            }
        }
    }
}
