using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;
using Xunit;

namespace FtpCluster.Compute.Tests.Kernels;

/// <summary>
/// The GEMM's dequantized panel slices of the row-block types (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K): every vector
/// path gives the scalar codec's floats bit for bit.
/// </summary>
/// <remarks>
/// The weights are random bytes with finite f16 scales of either sign, not quantized floats: every quant, every 6-bit
/// scale and min of the k-quants and every int8 scale of Q6_K (negative ones included) occurs, which a quantizer's
/// output would not cover. 45 rows: the second panel has 13 rows and 19 of zero padding, which decode to zero.
/// </remarks>
public sealed unsafe class RowBlockPanelsTests
{
    private const int Rows = 45;
    private const int W = PackedMatrix.PanelWidth;

    public static TheoryData<TensorDType> Types() =>
        [TensorDType.Q4_0, TensorDType.Q4_1, TensorDType.Q5_0, TensorDType.Q5_1, TensorDType.Q4_K, TensorDType.Q5_K, TensorDType.Q6_K];

    /// <summary>Every vector path: both widths, with the x86 shuffles where the CPU has them and with the portable API.</summary>
    private static readonly (SimdLevel Simd, bool X86Shuffles)[] VectorPaths =
        [(SimdLevel.Vector256, true), (SimdLevel.Vector256, false), (SimdLevel.Vector512, true), (SimdLevel.Vector512, false)];

    /// <summary>(k0, kc) slices: from 0 and from inside the row, and, for the 32-element types, kc that are not multiples of 256.</summary>
    private static (int K0, int Kc)[] Slices(TensorDType type) =>
        type.IsSuperBlock() ? [(0, 768), (256, 256), (256, 512)] : [(0, 576), (32, 96), (64, 160), (544, 32)];

    [Theory]
    [MemberData(nameof(Types))]
    public void Every_vector_path_dequantizes_a_slice_to_the_scalar_codecs_floats_bit_for_bit(TensorDType type)
    {
        int k = type.IsSuperBlock() ? 768 : 576;
        var packed = RandomBlocks(new Random(7 + (int)type), type, Rows, k);
        foreach (var (k0, kc) in Slices(type))
            for (int p = 0; p < packed.Panels; p++)
            {
                var expected = Slice(packed, p, k0, kc, SimdLevel.Scalar, x86Shuffles: false);
                for (int c = 0; c < kc; c++)
                    for (int r = 0; r < W; r++)
                    {
                        int row = p * W + r;
                        // The scalar slice is the codec's values; the zero padding decodes to zero (of either sign).
                        if (row < Rows)
                            Assert.Equal(Bits(packed[row, k0 + c]), Bits(expected[c * W + r]));
                        else
                            Assert.Equal(0f, expected[c * W + r]);
                    }
                foreach (var (simd, x86Shuffles) in VectorPaths)
                {
                    var actual = Slice(packed, p, k0, kc, simd, x86Shuffles);
                    for (int i = 0; i < expected.Length; i++)
                        if (Bits(expected[i]) != Bits(actual[i]))
                            Assert.Fail($"{type} {simd} x86Shuffles={x86Shuffles} panel {p} k0={k0} kc={kc}: column {k0 + i / W} row {p * W + i % W} is {actual[i]:R} ({Bits(actual[i]):X8}), the codec gives {expected[i]:R} ({Bits(expected[i]):X8})");
                }
            }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void The_gemm_gives_the_same_product_with_and_without_the_x86_shuffles_on_every_width(TensorDType type)
    {
        var rng = new Random(31);
        int m = 23, k = type.IsSuperBlock() ? 768 : 576;
        var x = KernelTestData.RandomArray(rng, m * k);
        var packed = RandomBlocks(rng, type, Rows, k);
        var weights = new float[Rows * k];
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < k; c++)
                weights[r * k + c] = packed[r, c];
        var expected = KernelTestData.Reference(x, m, weights, Rows, k);
        using var pool = new WorkerPool(2);
        foreach (var simd in new[] { SimdLevel.Vector256, SimdLevel.Vector512 })
        {
            // KBlock 300: rounded up to whole blocks, so the slices start inside the row. Without VNNI: the float32 GEMM
            // on the dequantized slices (with it, the integer GEMM runs, tested in BlockGemmTests).
            var options = new GemmOptions(simd, KBlock: 300, Vnni: false);
            var shuffled = KernelTestData.Multiply(x, m, packed, options, pool);
            KernelTestData.AssertClose(expected, shuffled, 1e-5, $"{type} {simd}");
            Assert.Equal(shuffled, KernelTestData.Multiply(x, m, packed, options with { X86Shuffles = false }, pool));
        }
    }

    [Fact]
    public void The_word_transpose_matches_the_byte_by_byte_one_with_and_without_a_bias()
    {
        var rng = new Random(17);
        var source = new byte[256];
        rng.NextBytes(source);
        foreach (byte add in new byte[] { 0, 32, 200 })
            foreach (int stride in new[] { 32, 128 })
            {
                var vector = new byte[8 * stride];
                var scalar = new byte[8 * stride];
                fixed (byte* s = source, v = vector, c = scalar)
                {
                    BlockBits.TransposeWords(s, v, stride, add);
                    BlockBits.TransposeWordsScalar(s, c, stride, add);
                }
                Assert.Equal(scalar, vector);
                // Word 5 of row 3 went to row 3's word of step 5, its bytes raised by the bias.
                Assert.Equal((byte)(source[32 * 3 + 4 * 5 + 2] + add), scalar[5 * stride + 4 * 3 + 2]);
            }
    }

    [Fact]
    public void A_matrix_that_does_not_hold_row_blocks_is_refused_with_its_type()
    {
        var packed = PackedMatrix.Pack(new float[W * 32], W, 32, TensorDType.Q8_0);
        var slice = new float[W * 32];
        fixed (float* s = slice)
        {
            float* start = s;
            var error = Assert.Throws<ArgumentException>(() => RowBlockPanels.Dequantize(packed, 0, 0, 32, start, SimdLevel.Vector256, true));
            Assert.Contains("Q8_0", error.Message);
        }
    }

    /// <summary>
    /// A [rows, k] matrix of random block bytes whose f16 fields (d, and dmin or m where the type has one) are random
    /// finite values in (−2, 2): every bit of every quant and sub-block scale is random.
    /// </summary>
    private static PackedMatrix RandomBlocks(Random rng, TensorDType type, int rows, int k)
    {
        var packed = PackedMatrix.Pack(new float[rows * k], rows, k, type);
        int[] halves = type switch
        {
            TensorDType.Q4_0 or TensorDType.Q5_0 => [0],
            TensorDType.Q6_K => [208],
            _ => [0, 2],
        };
        int rowBytes = checked((int)packed.RowBytes);
        for (int r = 0; r < rows; r++)
        {
            var row = new Span<byte>(packed.Row(r), rowBytes);
            rng.NextBytes(row);
            for (int b = 0; b < row.Length; b += type.BlockBytes())
                foreach (int at in halves)
                    BitConverter.TryWriteBytes(row[(b + at)..], WeightConvert.ToF16((float)(rng.NextDouble() * 4 - 2)));
        }
        return packed;
    }

    /// <summary>The slice [kc][32] of panel p, with a NaN sentinel after it that must stay untouched.</summary>
    private static float[] Slice(PackedMatrix packed, int p, int k0, int kc, SimdLevel simd, bool x86Shuffles)
    {
        var slice = new float[kc * W + 1];
        Array.Fill(slice, float.NaN);
        fixed (float* s = slice)
            Assert.True(s == RowBlockPanels.Dequantize(packed, p, k0, kc, s, simd, x86Shuffles));
        Assert.True(float.IsNaN(slice[^1]), $"{simd} x86Shuffles={x86Shuffles} wrote past the slice");
        return slice[..^1];
    }


    private static int Bits(float value) => BitConverter.SingleToInt32Bits(value);
}
