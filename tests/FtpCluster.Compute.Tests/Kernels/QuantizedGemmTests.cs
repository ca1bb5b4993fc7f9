using System.Buffers.Binary;
using System.Runtime.Intrinsics.X86;
using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Models;
using Xunit;

namespace FtpCluster.Compute.Tests.Kernels;

/// <summary>
/// Q8_0 weights: llama.cpp's block bytes, their panel layout, and the GEMV and GEMM on them.
/// </summary>
/// <remarks>
/// Tolerances. The GEMV quantizes x to Q8_0 as llama.cpp does, so it is checked against a float64
/// re-computation of llama.cpp's own arithmetic (integer block sums scaled by d_w · d_x): what is left is
/// float32 rounding of the block scales and sums, ≤ 1e-6 relative. Against the exact product of the
/// dequantized weights with float32 x it is off by llama.cpp's own activation-quantization error: each x
/// value moves by up to d_x / 2 = max|x| / 254 in its block, about 0.4% relative on random data over many
/// outputs, and a single 32-term output (n = 1, k = 32) reaches 1%; so ≤ 3e-2 there. The GEMM multiplies float32 x by the dequantized weights, so it is held to 1e-5 as the other
/// storage types are.
/// </remarks>
public sealed class QuantizedGemmTests : IDisposable
{
    private const double LlamaArithmeticTolerance = 1e-6;
    private const double ActivationQuantizationTolerance = 3e-2;
    private const double DequantizedTolerance = 1e-5;
    private static readonly int[] Ns = [1, 31, 33, 100];
    private static readonly int[] Ks = [32, 64, 96, 576];

    private readonly WorkerPool _pool = new(3);

    public void Dispose() => _pool.Dispose();

    /// <summary>Every GEMV path this machine can run: scalar, portable vectors, and AVX-VNNI where present.</summary>
    public static TheoryData<string, bool> GemvPaths()
    {
        var data = new TheoryData<string, bool> { { nameof(SimdLevel.Scalar), false }, { nameof(SimdLevel.Vector256), false } };
        if (AvxVnni.IsSupported)
            data.Add(nameof(SimdLevel.Vector256), true);
        return data;
    }

    [Fact]
    public void A_block_is_an_f16_scale_and_32_quants_rounded_half_away_from_zero()
    {
        // max|x| = 127, so d = 1 and q = round(x): 2.5 → 3 and -2.5 → -3 (away from zero, as C's roundf).
        var values = new float[32];
        values[0] = 127; values[1] = 2.5f; values[2] = -2.5f; values[3] = 0.49f; values[4] = -127;
        var block = new byte[Q8Block.Bytes];
        Q8Block.Quantize(values, block);
        Assert.Equal(WeightConvert.ToF16(1f), BinaryPrimitives.ReadUInt16LittleEndian(block));
        Assert.Equal(new sbyte[] { 127, 3, -3, 0, -127, 0 }, block[2..8].Select(b => (sbyte)b));

        var back = new float[32];
        Q8Block.Dequantize(block, back);
        Assert.Equal([127f, 3f, -3f, 0f, -127f], back[..5]);

        // An all-zero block has d = 0 and zero quants, not NaNs.
        Q8Block.Quantize(new float[32], block);
        Assert.All(block, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Packed_q8_weights_read_back_as_their_dequantized_blocks()
    {
        var rng = new Random(3);
        foreach (int n in Ns)
            foreach (int k in Ks)
            {
                var w = KernelTestData.RandomArray(rng, n * k);
                var packed = PackedMatrix.Pack(w, n, k, TensorDType.Q8_0);
                var expected = Dequantized(w, n, k);
                for (int r = 0; r < n; r++)
                    for (int c = 0; c < k; c++)
                        Assert.Equal(expected[r * k + c], packed[r, c]);
                // The same bytes as llama.cpp's blocks, padding rows aside.
                Assert.True(packed.ResidentBytes - (n + 31) / 32 * 32L * k / 32 * Q8Block.Bytes <= 64 + 8);
            }
    }

    [Fact]
    public void Columns_that_are_not_whole_blocks_are_refused_with_the_reason()
    {
        var error = Assert.Throws<ArgumentException>(() => PackedMatrix.Pack(new float[2 * 48], 2, 48, TensorDType.Q8_0));
        Assert.Contains("multiple of 32", error.Message);
        Assert.Contains("48", error.Message);
    }

    [Theory]
    [MemberData(nameof(GemvPaths))]
    public void Gemv_matches_llama_cpps_arithmetic_and_the_dequantized_product(string simd, bool vnni)
    {
        var options = new GemmOptions(Enum.Parse<SimdLevel>(simd), Vnni: vnni);
        var rng = new Random(1234);
        foreach (int k in Ks)
            foreach (int n in Ns)
            {
                var w = KernelTestData.RandomArray(rng, n * k);
                var packed = PackedMatrix.Pack(w, n, k, TensorDType.Q8_0);
                var dequantized = Dequantized(w, n, k);
                foreach (int m in new[] { 1, 2, 3, 4 })
                {
                    var x = KernelTestData.RandomArray(rng, m * k);
                    var y = KernelTestData.Multiply(x, m, packed, options, _pool);
                    string what = $"{simd} vnni={vnni} m={m} n={n} k={k}";
                    KernelTestData.AssertClose(LlamaCppReference(x, m, w, n, k), y, LlamaArithmeticTolerance, what + " (llama.cpp arithmetic)");
                    KernelTestData.AssertClose(KernelTestData.Reference(x, m, dequantized, n, k), y, ActivationQuantizationTolerance, what + " (dequantized product)");
                }
            }
    }

    [Fact]
    public void Every_gemv_path_and_thread_count_gives_the_same_bits()
    {
        // Each output sums its blocks in the same order on every path, and integer block sums are exact.
        var rng = new Random(17);
        int n = 100, k = 576;
        var packed = PackedMatrix.Pack(KernelTestData.RandomArray(rng, n * k), n, k, TensorDType.Q8_0);
        foreach (int m in new[] { 1, 4 })
        {
            var x = KernelTestData.RandomArray(rng, m * k);
            using var one = new WorkerPool(1);
            using var two = new WorkerPool(2);
            var expected = KernelTestData.Multiply(x, m, packed, new GemmOptions(SimdLevel.Scalar), one);
            foreach (var (simd, vnni) in GemvPaths().Select(row => ((string)row[0], (bool)row[1])))
                foreach (var pool in new[] { one, two })
                    Assert.Equal(expected, KernelTestData.Multiply(x, m, packed, new GemmOptions(Enum.Parse<SimdLevel>(simd), Vnni: vnni), pool));
        }
    }

    [Fact]
    public void Gemm_multiplies_float_rows_by_the_dequantized_weights_across_k_blocks_and_threads()
    {
        var rng = new Random(99);
        foreach (int threads in new[] { 1, 2 })
        {
            using var pool = new WorkerPool(threads);
            foreach (var (m, n, k) in new[] { (5, 33, 64), (23, 70, 320), (9, 100, 576) })
            {
                var w = KernelTestData.RandomArray(rng, n * k);
                var x = KernelTestData.RandomArray(rng, m * k);
                var packed = PackedMatrix.Pack(w, n, k, TensorDType.Q8_0);
                var expected = KernelTestData.Reference(x, m, Dequantized(w, n, k), n, k);
                // K blocks that are not multiples of 32 are rounded up to whole Q8_0 blocks.
                foreach (int kBlock in new[] { 1, 32, 50, 64, 512 })
                    KernelTestData.AssertClose(expected, KernelTestData.Multiply(x, m, packed, GemmOptions.Default with { KBlock = kBlock }, pool),
                        DequantizedTolerance, $"threads={threads} m={m} n={n} k={k} KBlock={kBlock}");
            }
        }
    }

    [Fact]
    public void A_q8_0_gguf_tensor_is_read_in_place_and_packed_without_requantizing()
    {
        using var temp = new TempDirectory();
        string path = temp.File("q8.gguf");
        int n = 40, k = 96;
        var values = KernelTestData.RandomArray(new Random(5), n * k);
        using (var writer = GgufWriter.Create(path, [], [new GgufTensorSpec("w", [n, k], TensorDType.Q8_0)]))
        {
            writer.Write(values);
            writer.Complete();
        }
        using var file = GgufFile.Open(path);
        var tensor = file.Weight(file.FindTensor("w")!);
        Assert.Equal(TensorDType.Q8_0, tensor.DType);
        Assert.Equal(n * k / 32 * 34L, tensor.ByteLength);

        var expected = Dequantized(values, n, k);
        Assert.Equal(expected, tensor.ToFloatArray());
        // A range that cuts blocks widens only what it asks for.
        var middle = new float[45];
        tensor.CopyTo(middle, 50);
        Assert.Equal(expected.AsSpan(50, 45).ToArray(), middle);

        var packed = PackedMatrix.Pack(tensor);
        Assert.Equal(TensorDType.Q8_0, packed.StorageType);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < k; c++)
                Assert.Equal(expected[r * k + c], packed[r, c]);
        // Widened at load when asked.
        Assert.Equal(expected[77], PackedMatrix.Pack(tensor, TensorDType.F32)[77 / k, 77 % k]);
    }


    /// <summary>Each row quantized and dequantized through llama.cpp's Q8_0 blocks.</summary>
    private static float[] Dequantized(float[] w, int n, int k)
    {
        var result = new float[w.Length];
        var blocks = new byte[k / 32 * Q8Block.Bytes];
        for (int r = 0; r < n; r++)
        {
            Q8Block.Quantize(w.AsSpan(r * k, k), blocks);
            Q8Block.Dequantize(blocks, result.AsSpan(r * k, k));
        }
        return result;
    }

    /// <summary>llama.cpp's Q8_0 × Q8_0 dot product in float64: both sides quantized, Σ_blocks d_w·d_x·Σ q_w·q_x.</summary>
    private static double[] LlamaCppReference(float[] x, int m, float[] w, int n, int k)
    {
        var wBlocks = new byte[n * k / 32 * Q8Block.Bytes];
        var xBlocks = new byte[m * k / 32 * Q8Block.Bytes];
        Q8Block.Quantize(w, wBlocks);
        Q8Block.Quantize(x, xBlocks);
        var y = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int b = 0; b < k / 32; b++)
                {
                    var wb = wBlocks.AsSpan((j * k / 32 + b) * Q8Block.Bytes, Q8Block.Bytes);
                    var xb = xBlocks.AsSpan((i * k / 32 + b) * Q8Block.Bytes, Q8Block.Bytes);
                    long dot = 0;
                    for (int c = 0; c < 32; c++)
                        dot += (sbyte)wb[2 + c] * (sbyte)xb[2 + c];
                    sum += (double)Scale(wb) * Scale(xb) * dot;
                }
                y[i * n + j] = sum;
            }
        return y;
    }

    private static float Scale(ReadOnlySpan<byte> block) => WeightConvert.FromF16(BinaryPrimitives.ReadUInt16LittleEndian(block));
}
