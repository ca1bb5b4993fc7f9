using System.Runtime.Intrinsics.X86;
using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Models;
using Xunit;

namespace FtpCluster.Compute.Tests.Kernels;

/// <summary>
/// GEMV and GEMM on weights kept as llama.cpp's row-major blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K).
/// </summary>
/// <remarks>
/// Tolerances. The GEMV quantizes x to int8 per block as llama.cpp does (Q8_0 blocks of 32, Q8_K blocks of 256), so it
/// is checked against a float64 product of the dequantized weights with the dequantized x quants, which is exactly the
/// sum it takes; what is left is float32 rounding of block scales and sums: ≤ 1e-5 relative. Against the exact product
/// with float32 x it is off by the activation quantization: each x value moves by up to d_x / 2 = max|x| / 254 in its
/// block, about 0.4% relative on random data, 1% on a single short output, so ≤ 3e-2 (as for Q8_0). The GEMM multiplies
/// float32 x by the dequantized weights, so it is held to 1e-5 as the other storage types are.
/// </remarks>
public sealed class BlockGemmTests
{
    private const double QuantizedXTolerance = 1e-5;
    private const double ActivationQuantizationTolerance = 3e-2;
    private const double DequantizedTolerance = 1e-5;

    /// <summary>Row lengths per family: smollm2-135m's 576 (and hidden 1536) for the 32-element types, 256 multiples for the k-quants.</summary>
    private static int[] Ks(TensorDType type) => type.IsSuperBlock() ? [256, 512, 1536] : [32, 96, 576];

    private static readonly int[] Ns = [1, 31, 33, 100];

    public static TheoryData<TensorDType> Types() =>
        [TensorDType.Q4_0, TensorDType.Q4_1, TensorDType.Q5_0, TensorDType.Q5_1, TensorDType.Q4_K, TensorDType.Q5_K, TensorDType.Q6_K];

    /// <summary>Every GEMV path this machine can run: scalar, portable vectors, and AVX-VNNI where present.</summary>
    private static IEnumerable<GemmOptions> Paths()
    {
        yield return new GemmOptions(SimdLevel.Scalar);
        yield return new GemmOptions(SimdLevel.Vector256, Vnni: false);
        if (AvxVnni.IsSupported)
            yield return new GemmOptions(SimdLevel.Vector256, Vnni: true);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Gemv_matches_the_product_of_quantized_x_and_the_dequantized_weights_on_every_path_and_thread_count(TensorDType type)
    {
        var rng = new Random(1234 + (int)type);
        using var one = new WorkerPool(1);
        using var two = new WorkerPool(2);
        foreach (int k in Ks(type))
            foreach (int n in Ns)
            {
                var packed = PackedMatrix.Pack(KernelTestData.RandomArray(rng, n * k), n, k, type);
                var weights = Dequantized(packed);
                foreach (int m in new[] { 1, 2, 3, 4 })
                {
                    var x = KernelTestData.RandomArray(rng, m * k);
                    var quantizedX = QuantizedX(x, m, k, type.BlockSize());
                    foreach (var options in Paths())
                        foreach (var pool in new[] { one, two })
                        {
                            var y = KernelTestData.Multiply(x, m, packed, options, pool);
                            string what = $"{type} {options.Simd} vnni={options.Vnni} threads={pool.Threads} m={m} n={n} k={k}";
                            KernelTestData.AssertClose(KernelTestData.Reference(quantizedX, m, weights, n, k), y, QuantizedXTolerance, what + " (quantized x)");
                            KernelTestData.AssertClose(KernelTestData.Reference(x, m, weights, n, k), y, ActivationQuantizationTolerance, what + " (float x)");
                        }
                }
            }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Gemm_without_vnni_multiplies_float_rows_by_the_dequantized_weights_across_k_blocks_and_threads(TensorDType type)
    {
        var rng = new Random(99);
        int k = type.IsSuperBlock() ? 768 : 576;
        foreach (int threads in new[] { 1, 2 })
        {
            using var pool = new WorkerPool(threads);
            foreach (var (m, n) in new[] { (5, 33), (23, 70) })
            {
                var x = KernelTestData.RandomArray(rng, m * k);
                var packed = PackedMatrix.Pack(KernelTestData.RandomArray(rng, n * k), n, k, type);
                var expected = KernelTestData.Reference(x, m, Dequantized(packed), n, k);
                // K blocks that are not whole blocks are rounded up to whole ones.
                foreach (int kBlock in new[] { 1, 64, 300, 512 })
                    KernelTestData.AssertClose(expected, KernelTestData.Multiply(x, m, packed, GemmOptions.Default with { KBlock = kBlock, Vnni = false }, pool),
                        DequantizedTolerance, $"{type} threads={threads} m={m} n={n} k={k} KBlock={kBlock}");
            }
        }
    }

    /// <summary>
    /// The integer GEMM (AVX-VNNI) quantizes x per block as the GEMV does (Q8_0's 32 values, Q8_K's 256 for the k-quants),
    /// so it is held to the product of those quants with the dequantized weights as the GEMV is; row counts that are not whole 4-row tiles, partial panels, several K slices,
    /// and both thread counts.
    /// </summary>
    [VnniTheory]
    [MemberData(nameof(Types))]
    public void Gemm_with_vnni_matches_the_product_of_quantized_x_and_the_dequantized_weights(TensorDType type)
    {
        var rng = new Random(7 + (int)type);
        int k = type.IsSuperBlock() ? 768 : 576;
        foreach (int threads in new[] { 1, 2 })
        {
            using var pool = new WorkerPool(threads);
            foreach (var (m, n) in new[] { (5, 33), (23, 70), (64, 100) })
            {
                var x = KernelTestData.RandomArray(rng, m * k);
                var packed = PackedMatrix.Pack(KernelTestData.RandomArray(rng, n * k), n, k, type);
                var weights = Dequantized(packed);
                var quantizedX = QuantizedX(x, m, k, type.IsSuperBlock() ? SuperBlocks.Size : Q8Block.Size);
                foreach (int kBlock in new[] { 1, 300, 512 })
                {
                    var y = KernelTestData.Multiply(x, m, packed, GemmOptions.Default with { KBlock = kBlock }, pool);
                    string what = $"{type} threads={threads} m={m} n={n} k={k} KBlock={kBlock}";
                    KernelTestData.AssertClose(KernelTestData.Reference(quantizedX, m, weights, n, k), y, QuantizedXTolerance, what + " (quantized x)");
                    KernelTestData.AssertClose(KernelTestData.Reference(x, m, weights, n, k), y, ActivationQuantizationTolerance, what + " (float x)");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void A_gguf_tensor_is_read_in_place_and_packed_as_its_own_bytes(TensorDType type)
    {
        using var temp = new TempDirectory();
        string path = temp.File("w.gguf");
        int n = 40, k = type.IsSuperBlock() ? 512 : 96;
        var values = KernelTestData.RandomArray(new Random(5), n * k);
        using (var writer = GgufWriter.Create(path, [], [new GgufTensorSpec("w", [n, k], type)]))
        {
            writer.Write(values);
            writer.Complete();
        }
        using var file = GgufFile.Open(path);
        var tensor = file.Weight(file.FindTensor("w")!);
        Assert.Equal(type, tensor.DType);
        Assert.Equal(n * k / type.BlockSize() * type.BlockBytes(), tensor.ByteLength);

        var blocks = new byte[type.ByteCount(n * k)];
        WeightEncoding.Encode(values, type, blocks);
        Assert.Equal(blocks, tensor.Bytes.ToArray());
        var expected = new float[n * k];
        WeightConvert.ToSingle(blocks, type, expected);
        Assert.Equal(expected, tensor.ToFloatArray());
        // A range that cuts blocks widens only what it asks for.
        var middle = new float[300];
        tensor.CopyTo(middle, 50);
        Assert.Equal(expected.AsSpan(50, 300).ToArray(), middle);

        var packed = PackedMatrix.Pack(tensor);
        Assert.Equal(type, packed.StorageType);
        Assert.True(packed.HoldsRowBlocks);
        Assert.Equal(expected, Dequantized(packed));
        // Widened at load when asked.
        Assert.Equal(expected[77], PackedMatrix.Pack(tensor, TensorDType.F32)[77 / k, 77 % k]);
        // And quantized at load from a float tensor: the same blocks the writer made.
        Assert.Equal(expected, Dequantized(PackedMatrix.Pack(values, n, k, type)));
    }

    [Fact]
    public void Columns_that_are_not_whole_super_blocks_are_refused_with_the_reason()
    {
        var error = Assert.Throws<ArgumentException>(() => PackedMatrix.Pack(new float[2 * 576], 2, 576, TensorDType.Q4_K));
        Assert.Contains("multiple of 256", error.Message);
        Assert.Contains("576", error.Message);
    }


    private static float[] Dequantized(PackedMatrix packed)
    {
        var result = new float[packed.Rows * packed.Cols];
        for (int r = 0; r < packed.Rows; r++)
            for (int c = 0; c < packed.Cols; c++)
                result[r * packed.Cols + c] = packed[r, c];
        return result;
    }

    /// <summary>x as the integer kernels see it: each block's quants times its scale (Q8_0 blocks of 32, or Q8_K's of 256).</summary>
    private static unsafe float[] QuantizedX(float[] x, int m, int k, int block)
    {
        var result = new float[m * k];
        fixed (float* px = x)
        {
            var activations = new QuantizedActivations(px, m, k, block);
            for (int r = 0; r < m; r++)
            {
                var row = activations.Row(r);
                for (int i = 0; i < k; i++)
                    result[r * k + i] = row.Quants[i] * row.Scales[i / block];
            }
        }
        return result;
    }
}

/// <summary>A theory that is skipped, saying why, where the CPU has no AVX-VNNI for the integer GEMM.</summary>
public sealed class VnniTheoryAttribute : TheoryAttribute
{
    public VnniTheoryAttribute()
    {
        if (!BlockGemm.Supported(GemmOptions.Default))
            Skip = "this CPU has no AVX-VNNI: the GEMM on block types dequantizes to float32 (tested without VNNI above)";
    }
}
