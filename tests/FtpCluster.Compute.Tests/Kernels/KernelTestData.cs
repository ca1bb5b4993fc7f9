using FtpCluster.Compute.Kernels.Cpu;

namespace FtpCluster.Compute.Tests.Kernels;

/// <summary>What the kernel tests share: random operands and the relative Frobenius error they are held to.</summary>
internal static class KernelTestData
{
    /// <summary>Values uniform in [-1, 1).</summary>
    public static float[] RandomArray(Random rng, int length)
    {
        var a = new float[length];
        for (int i = 0; i < a.Length; i++)
            a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    /// <summary>‖actual − expected‖ / ‖expected‖ (Frobenius) at most <paramref name="tolerance"/>.</summary>
    public static void AssertClose(double[] expected, float[] actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double err = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = actual[i] - expected[i];
            err += d * d;
            norm += expected[i] * expected[i];
        }
        double relative = Math.Sqrt(err / Math.Max(norm, double.Epsilon));
        Assert.True(relative <= tolerance, $"{what}: relative Frobenius error {relative:E2} > {tolerance:E0}");
    }

    /// <summary>y[m, n] = x[m, k] · wᵀ in float64: the product the kernels' float32 results are held to.</summary>
    public static double[] Reference(float[] x, int m, float[] w, int n, int k)
    {
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int c = 0; c < k; c++)
                    sum += (double)x[i * k + c] * w[j * k + c];
                y[i * n + j] = sum;
            }
        return y;
    }

    /// <summary>y = x · wᵀ through <see cref="Gemm"/>, with a poisoned element past y so a kernel that writes past it shows up.</summary>
    public static float[] Multiply(float[] x, int m, PackedMatrix packed, GemmOptions options, WorkerPool pool)
    {
        var y = new float[m * packed.Rows + 1];
        Array.Fill(y, float.NaN);
        Gemm.Multiply(x, m, packed, y, pool, options);
        Xunit.Assert.True(float.IsNaN(y[^1]), "wrote past y");
        return y[..^1];
    }
}
