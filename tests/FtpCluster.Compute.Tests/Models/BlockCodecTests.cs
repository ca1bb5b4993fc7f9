using System.Buffers.Binary;
using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;
using Xunit;

namespace FtpCluster.Compute.Tests.Models;

/// <summary>
/// llama.cpp's 4-, 5- and 6-bit blocks: hand-built blocks (known scales and quants, laid out byte by byte as
/// ggml-common.h describes them) decode to known values through the one dequantize entry, and the reference
/// quantizers round-trip values within each type's resolution.
/// </summary>
public sealed class BlockCodecTests
{
    private static readonly TensorDType[] NewTypes =
        [TensorDType.Q4_0, TensorDType.Q4_1, TensorDType.Q5_0, TensorDType.Q5_1, TensorDType.Q4_K, TensorDType.Q5_K, TensorDType.Q6_K];

    [Theory]
    [InlineData(TensorDType.Q4_0, 32, 18)]
    [InlineData(TensorDType.Q4_1, 32, 20)]
    [InlineData(TensorDType.Q5_0, 32, 22)]
    [InlineData(TensorDType.Q5_1, 32, 24)]
    [InlineData(TensorDType.Q4_K, 256, 144)]
    [InlineData(TensorDType.Q5_K, 256, 176)]
    [InlineData(TensorDType.Q6_K, 256, 210)]
    public void Block_sizes_are_ggmls(TensorDType type, int size, int bytes)
    {
        Assert.Equal(size, type.BlockSize());
        Assert.Equal(bytes, type.BlockBytes());
        Assert.Equal(new GgmlBlockLayout(size, bytes), type.ToGgmlType().Layout());
        Assert.Equal(type, type.ToGgmlType().ToTensorDType());
    }

    [Fact]
    public void Q4_0_is_d_times_nibble_minus_8_low_nibbles_first()
    {
        var block = new byte[18];
        Half(block, 0, 0.5f);
        for (int j = 0; j < 16; j++)
            block[2 + j] = (byte)(j | (15 - j) << 4);
        var values = Decode(TensorDType.Q4_0, block);
        for (int j = 0; j < 16; j++)
        {
            Assert.Equal(0.5f * (j - 8), values[j]);
            Assert.Equal(0.5f * (15 - j - 8), values[16 + j]);
        }
    }

    [Fact]
    public void Q4_1_is_d_times_nibble_plus_m()
    {
        var block = new byte[20];
        Half(block, 0, 0.25f);
        Half(block, 2, -1f);
        for (int j = 0; j < 16; j++)
            block[4 + j] = (byte)(3 | 12 << 4);
        var values = Decode(TensorDType.Q4_1, block);
        Assert.All(values[..16], v => Assert.Equal(0.25f * 3 - 1, v));
        Assert.All(values[16..], v => Assert.Equal(0.25f * 12 - 1, v));
    }

    [Fact]
    public void Q5_0_takes_bit_j_of_qh_as_element_js_fifth_bit()
    {
        var block = new byte[22];
        Half(block, 0, 2f);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(2), 1u << 0 | 1u << 5 | 1u << 16 | 1u << 31);
        for (int j = 0; j < 16; j++)
            block[6 + j] = (byte)(1 | 2 << 4);
        var values = Decode(TensorDType.Q5_0, block);
        for (int i = 0; i < 32; i++)
        {
            int nibble = i < 16 ? 1 : 2;
            int fifth = i is 0 or 5 or 16 or 31 ? 16 : 0;
            Assert.Equal(2f * (nibble + fifth - 16), values[i]);
        }
    }

    [Fact]
    public void Q5_1_adds_m_to_d_times_the_five_bit_quant()
    {
        var block = new byte[24];
        Half(block, 0, 0.5f);
        Half(block, 2, 3f);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(4), 0xFFFF0000u);
        for (int j = 0; j < 16; j++)
            block[8 + j] = (byte)(j | j << 4);
        var values = Decode(TensorDType.Q5_1, block);
        for (int j = 0; j < 16; j++)
        {
            Assert.Equal(0.5f * j + 3, values[j]);
            Assert.Equal(0.5f * (j + 16) + 3, values[16 + j]);
        }
    }

    /// <summary>Scales sc_j = 2j + 33 and mins m_j = 60 − j: every one above 15, so the high bits in bytes 0–7 matter.</summary>
    [Theory]
    [InlineData(TensorDType.Q4_K)]
    [InlineData(TensorDType.Q5_K)]
    public void Q4_K_and_Q5_K_are_d_sc_q_minus_dmin_m_with_6_bit_scales(TensorDType type)
    {
        bool fifth = type == TensorDType.Q5_K;
        var block = new byte[type.BlockBytes()];
        Half(block, 0, 0.5f);
        Half(block, 2, 0.25f);
        int[] sc = [.. Enumerable.Range(0, 8).Select(j => 2 * j + 33)];
        int[] m = [.. Enumerable.Range(0, 8).Select(j => 60 - j)];
        for (int j = 0; j < 4; j++)
        {
            block[4 + j] = (byte)(sc[j] | (sc[j + 4] >> 4) << 6);
            block[8 + j] = (byte)(m[j] | (m[j + 4] >> 4) << 6);
            block[12 + j] = (byte)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
        }
        // Element i's quant: i % 16, plus 16 (Q5_K) for i % 3 == 0.
        int qs = fifth ? 48 : 16;
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
            {
                int a = 64 * c + l, b = a + 32;
                block[qs + 32 * c + l] = (byte)(a % 16 | (b % 16) << 4);
                if (fifth)
                    block[16 + l] |= (byte)((a % 3 == 0 ? 1 : 0) << (2 * c) | (b % 3 == 0 ? 1 : 0) << (2 * c + 1));
            }
        var values = Decode(type, block);
        for (int i = 0; i < 256; i++)
        {
            int q = i % 16 + (fifth && i % 3 == 0 ? 16 : 0);
            Assert.Equal(0.5f * sc[i / 32] * q - 0.25f * m[i / 32], values[i]);
        }
    }

    [Fact]
    public void Q6_K_is_d_sc_times_q_minus_32_with_the_high_bits_in_qh()
    {
        var block = new byte[210];
        for (int j = 0; j < 16; j++)
            block[192 + j] = (byte)(sbyte)(j - 8);
        Half(block, 208, 0.125f);
        // Element i's quant: i % 64, its low 4 bits in ql, its high 2 in qh, as dequantize_row_q6_K reads them.
        for (int half = 0; half < 2; half++)
            for (int l = 0; l < 32; l++)
            {
                int Q(int offset) => (128 * half + offset + l) % 64;
                block[64 * half + l] = (byte)((Q(0) & 15) | (Q(64) & 15) << 4);
                block[64 * half + 32 + l] = (byte)((Q(32) & 15) | (Q(96) & 15) << 4);
                block[128 + 32 * half + l] = (byte)(Q(0) >> 4 | (Q(32) >> 4) << 2 | (Q(64) >> 4) << 4 | (Q(96) >> 4) << 6);
            }
        var values = Decode(TensorDType.Q6_K, block);
        for (int i = 0; i < 256; i++)
            Assert.Equal(0.125f * (i / 16 - 8) * (i % 64 - 32), values[i]);
    }

    /// <summary>
    /// Quantizing random values and decoding them: the error per element is at most half a step of the block's grid
    /// (plus the rounding of the 6- and 8-bit sub-block scales for the k-quants), so its RMS relative to the values'
    /// stays under the stated bound: about 2^-bits of the range, measured 0.06 (Q4), 0.03 (Q5), 0.015 (Q6).
    /// </summary>
    [Theory]
    [InlineData(TensorDType.Q4_0, 0.12)]
    [InlineData(TensorDType.Q4_1, 0.10)]
    [InlineData(TensorDType.Q5_0, 0.06)]
    [InlineData(TensorDType.Q5_1, 0.05)]
    [InlineData(TensorDType.Q4_K, 0.12)]
    [InlineData(TensorDType.Q5_K, 0.06)]
    [InlineData(TensorDType.Q6_K, 0.03)]
    public void Quantizing_round_trips_within_the_types_resolution(TensorDType type, double bound)
    {
        var rng = new Random(11);
        var values = new float[4 * 256];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(rng.NextDouble() * 2 - 1) * (i / 256 + 1);
        var blocks = new byte[type.ByteCount(values.Length)];
        WeightEncoding.Encode(values, type, blocks);
        var back = new float[values.Length];
        WeightConvert.ToSingle(blocks, type, back);
        double error = 0, norm = 0;
        for (int i = 0; i < values.Length; i++)
        {
            error += Math.Pow(back[i] - values[i], 2);
            norm += (double)values[i] * values[i];
        }
        double relative = Math.Sqrt(error / norm);
        Assert.True(relative < bound, $"{type}: RMS error {relative:E2} of the values' RMS, bound {bound}");
        Assert.True(relative > bound / 20, $"{type}: RMS error {relative:E2} is too small for {type}'s bits: is it really quantizing?");
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void All_zero_values_quantize_to_zero_blocks_that_decode_to_zero(TensorDType type)
    {
        var blocks = new byte[type.ByteCount(256)];
        Array.Fill(blocks, (byte)0xAB);
        WeightEncoding.Encode(new float[256], type, blocks);
        var back = new float[256];
        WeightConvert.ToSingle(blocks, type, back);
        Assert.All(back, v => Assert.Equal(0f, v));
        // Zero bytes decode to zero too: padding rows of a packed matrix rely on it.
        WeightConvert.ToSingle(new byte[blocks.Length], type, back);
        Assert.All(back, v => Assert.Equal(0f, v));
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Lengths_that_are_not_whole_blocks_are_refused(TensorDType type)
    {
        var error = Assert.Throws<ArgumentException>(() => WeightConvert.ToSingle(new byte[type.BlockBytes()], type, new float[type.BlockSize() + 1]));
        Assert.Contains(type.ToString(), error.Message);
    }

    public static TheoryData<TensorDType> Types() => [.. NewTypes];

    /// <summary>llama.cpp's llama_tensor_get_type fall-backs, and F16 when the fall-back's blocks do not divide the rows either.</summary>
    [Theory]
    [InlineData(TensorDType.Q4_K, 576, TensorDType.Q5_0)]
    [InlineData(TensorDType.Q5_K, 576, TensorDType.Q5_1)]
    [InlineData(TensorDType.Q6_K, 576, TensorDType.Q8_0)]
    [InlineData(TensorDType.Q4_K, 1536, TensorDType.Q4_K)]
    [InlineData(TensorDType.Q4_K, 100, TensorDType.F16)]
    [InlineData(TensorDType.Q4_0, 576, TensorDType.Q4_0)]
    [InlineData(TensorDType.Q4_0, 100, TensorDType.F16)]
    [InlineData(TensorDType.Q8_0, 100, TensorDType.F16)]
    [InlineData(TensorDType.BF16, 100, TensorDType.BF16)]
    public void Rows_that_are_not_whole_blocks_fall_back_as_llama_cpps_quantizer_does(TensorDType target, int rowLength, TensorDType expected) =>
        Assert.Equal(expected, target.StorageForRows(rowLength));

    [Fact]
    public void Every_type_parses_by_its_lower_case_name()
    {
        foreach (var type in Enum.GetValues<TensorDType>())
            Assert.Equal(type, TensorDTypeExtensions.Parse(type.ToString().ToLowerInvariant()));
        var error = Assert.Throws<ArgumentException>(() => TensorDTypeExtensions.Parse("q3_k"));
        Assert.Contains("q4_k", error.Message);
    }

    private static float[] Decode(TensorDType type, byte[] block)
    {
        var values = new float[type.BlockSize()];
        WeightConvert.ToSingle(block, type, values);
        return values;
    }

    private static void Half(byte[] block, int offset, float value) =>
        BinaryPrimitives.WriteUInt16LittleEndian(block.AsSpan(offset), WeightConvert.ToF16(value));
}
