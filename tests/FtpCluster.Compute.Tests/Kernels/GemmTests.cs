using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;
using Xunit;

namespace FtpCluster.Compute.Tests.Kernels;

/// <summary>
/// GEMM and GEMV against a float64 reference computed from the weights as stored (rounded to the storage
/// type), so the only error left is float32 accumulation: relative Frobenius error ≤ 1e-5 for every storage.
/// </summary>
public sealed class GemmTests : IDisposable
{
    private const double Tolerance = 1e-5;
    private static readonly int[] Ms = [1, 2, 3, 5, 8, 9, 17, 100];
    private static readonly int[] Ns = [1, 31, 33, 100];
    private static readonly int[] Ks = [1, 7, 513, 1100];

    // Three threads on any machine, so work really is split (and unevenly).
    private readonly WorkerPool _pool = new(3);

    public void Dispose() => _pool.Dispose();

    public static TheoryData<TensorDType, string> StorageAndSimd()
    {
        var data = new TheoryData<TensorDType, string>();
        foreach (var storage in new[] { TensorDType.F32, TensorDType.BF16, TensorDType.F16 })
            foreach (var simd in SupportedSimd())
                data.Add(storage, simd.ToString());
        return data;
    }

    [Theory]
    [MemberData(nameof(StorageAndSimd))]
    public void Multiply_matches_float64_reference_on_awkward_shapes(TensorDType storage, string simd)
    {
        var options = new GemmOptions(Enum.Parse<SimdLevel>(simd));
        var rng = new Random(1234);
        foreach (int k in Ks)
            foreach (int n in Ns)
            {
                var w = KernelTestData.RandomArray(rng, n * k);
                var packed = PackedMatrix.Pack(w, n, k, storage);
                foreach (int m in Ms)
                {
                    var x = KernelTestData.RandomArray(rng, m * k);
                    AssertMatchesReference(x, m, packed, w, storage, options, $"m={m} n={n} k={k}");
                }
            }
    }

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.BF16)]
    [InlineData(TensorDType.F16)]
    public void Blocked_gemm_is_exact_across_k_blocks_and_panel_edges(TensorDType storage)
    {
        // Small K blocks force many accumulate passes, including through the edge tiles.
        var rng = new Random(99);
        int m = 23, n = 70, k = 300;
        var w = KernelTestData.RandomArray(rng, n * k);
        var x = KernelTestData.RandomArray(rng, m * k);
        var packed = PackedMatrix.Pack(w, n, k, storage);
        foreach (int kBlock in new[] { 1, 7, 64, 299, 300, 1000 })
            AssertMatchesReference(x, m, packed, w, storage, GemmOptions.Default with { KBlock = kBlock }, $"KBlock={kBlock}");
    }

    [Fact]
    public void Gemv_and_gemm_agree_where_the_crossover_moves()
    {
        var rng = new Random(5);
        int n = 65, k = 129;
        var w = KernelTestData.RandomArray(rng, n * k);
        var packed = PackedMatrix.Pack(w, n, k, TensorDType.BF16);
        foreach (int maxGemvRows in new[] { 0, 4, 9 })
            foreach (int m in new[] { 1, 4, 5, 9 })
                AssertMatchesReference(KernelTestData.RandomArray(rng, m * k), m, packed, w, TensorDType.BF16,
                    GemmOptions.Default with { MaxGemvRows = maxGemvRows }, $"MaxGemvRows={maxGemvRows} m={m}");
    }

    [Fact]
    public void Single_thread_pool_and_many_threads_give_the_same_result()
    {
        var rng = new Random(8);
        int m = 37, n = 200, k = 90;
        var w = KernelTestData.RandomArray(rng, n * k);
        var x = KernelTestData.RandomArray(rng, m * k);
        var packed = PackedMatrix.Pack(w, n, k, TensorDType.F32);
        var y1 = new float[m * n];
        var y7 = new float[m * n];
        using (var one = new WorkerPool(1))
            Gemm.Multiply(x, m, packed, y1, one);
        using (var seven = new WorkerPool(7))
            Gemm.Multiply(x, m, packed, y7, seven);
        // Each output is summed in the same order whichever thread computes it.
        Assert.Equal(y1, y7);
    }

    [Theory]
    [MemberData(nameof(StorageAndSimd))]
    public void Special_weights_widen_exactly(TensorDType storage, string simd)
    {
        // Subnormals, signed zero, the largest half, infinities and NaN, selected by a one-hot x so
        // each output is exactly one weight.
        float[] specials =
        [
            0f, -0f, 1f, -2.5f, 65504f, -65504f, 6.1035156e-05f, 5.9604645e-08f, -5.9604645e-08f, 1e-6f, 3.3e-38f,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1.00390625f, 1.01171875f, 123456.789f, -1e-30f,
        ];
        int n = specials.Length, k = 3, column = 1;
        var w = new float[n * k];
        for (int j = 0; j < n; j++)
        {
            w[j * k] = 0.5f;
            w[j * k + column] = specials[j];
            w[j * k + 2] = -0.25f;
        }
        var packed = PackedMatrix.Pack(w, n, k, storage);
        var options = new GemmOptions(Enum.Parse<SimdLevel>(simd));
        foreach (int m in new[] { 1, 8 })
        {
            var x = new float[m * k];
            for (int r = 0; r < m; r++)
                x[r * k + column] = 1f;
            var y = new float[m * n];
            Gemm.Multiply(x, m, packed, y, _pool, options);
            for (int r = 0; r < m; r++)
                for (int j = 0; j < n; j++)
                {
                    float expected = WeightConvert.Round(specials[j], storage);
                    Assert.Equal(expected, packed[j, column]);
                    Assert.Equal(expected, y[r * n + j]);
                }
        }
    }

    [Fact]
    public void Zero_rows_or_columns_leave_y_untouched_and_zero_k_clears_it()
    {
        var packed = PackedMatrix.Pack(new float[6], 2, 3, TensorDType.F32);
        var y = new float[] { 7, 7, 7, 7 };
        Gemm.Multiply(ReadOnlySpan<float>.Empty, 0, packed, y, _pool);
        Assert.All(y, v => Assert.Equal(7f, v));

        var empty = PackedMatrix.Pack(ReadOnlySpan<float>.Empty, 2, 0, TensorDType.F32);
        Gemm.Multiply(ReadOnlySpan<float>.Empty, 2, empty, y, _pool);
        Assert.All(y, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void Mismatched_spans_are_rejected()
    {
        var packed = PackedMatrix.Pack(new float[6], 2, 3, TensorDType.F32);
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(new float[5], 2, packed, new float[4], _pool));
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(new float[6], 2, packed, new float[3], _pool));
    }

    internal static IEnumerable<SimdLevel> SupportedSimd()
    {
        yield return SimdLevel.Scalar;
        if (System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated)
            yield return SimdLevel.Vector256;
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            yield return SimdLevel.Vector512;
    }

    private void AssertMatchesReference(float[] x, int m, PackedMatrix packed, float[] w, TensorDType storage, GemmOptions options, string what)
    {
        int n = packed.Rows, k = packed.Cols;
        var stored = Array.ConvertAll(w, v => WeightConvert.Round(v, storage));
        // Poison y so a kernel that skips an output (or reads y before writing it) shows up.
        var y = new float[m * n + 1];
        Array.Fill(y, float.NaN);
        Gemm.Multiply(x, m, packed, y, _pool, options);
        Assert.True(float.IsNaN(y[^1]), $"{what}: wrote past y");

        double err = 0, norm = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int c = 0; c < k; c++)
                    sum += (double)x[i * k + c] * stored[j * k + c];
                double d = y[i * n + j] - sum;
                err += d * d;
                norm += sum * sum;
            }
        double relative = Math.Sqrt(err / norm);
        Assert.True(relative <= Tolerance, $"{storage} {options.Simd} {what}: relative Frobenius error {relative:E2} > {Tolerance:E0}");
    }
}
