using System.Buffers.Binary;
using FtpCluster.Compute.Kernels.Cpu;

namespace FtpCluster.Compute.Models;

/// <summary>
/// llama.cpp's k-quants, super-blocks of 256 elements, bit for bit (all little-endian):
/// <list type="bullet">
/// <item>Q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of eight 6-bit sub-block scales and eight 6-bit mins, 128 bytes qs.
/// Sub-block j (32 elements) has value d · sc_j · q − dmin · m_j. Each 64 elements take 32 bytes of qs: the first 32 are
/// the low nibbles, the next 32 the high ones.</item>
/// <item>Q5_K (176 bytes): as Q4_K with 32 bytes qh between the scales and qs: bit 2c of qh[l] is the fifth bit of element
/// 64c + l, bit 2c + 1 that of element 64c + 32 + l.</item>
/// <item>Q6_K (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales, f16 d; sub-block j
/// (16 elements) has value d · sc_j · (q − 32). Each 128 elements take 64 bytes of ql and 32 of qh: element l, 32 + l,
/// 64 + l, 96 + l (l &lt; 32) are the low nibble of ql[l], of ql[32 + l], the high nibble of ql[l], of ql[32 + l], with
/// bits 0–1, 2–3, 4–5, 6–7 of qh[l] on top.</item>
/// </list>
/// The 6-bit scales and mins of Q4_K and Q5_K: for j &lt; 4, sc_j and m_j are the low 6 bits of bytes j and j + 4; for
/// j ≥ 4 the low nibble of byte j + 4 is sc_j's low bits and its high nibble m_j's, and the top two bits of bytes j − 4
/// and j are their high bits.
/// </summary>
/// <remarks>
/// Quantizing is a plain reference, not llama.cpp's search for the best scales (make_qkx2_quants): files it writes
/// decode with llama.cpp's layout, but hold somewhat larger rounding errors than llama.cpp's own. Q4_K and Q5_K take
/// each sub-block's range [min(0, min x), max x] (so the minimum is never positive, as llama.cpp's), sc = range / 15 (31),
/// then d and dmin as the largest sc and m over 63 rounded to f16, the 6-bit sc and m rounded against those, and each q
/// rounded against the stored d · sc and dmin · m. Q6_K takes each sub-block's scale as v / −32 (v its element of largest
/// magnitude, with its sign), d as the largest of those over −128, and rounds the int8 scales and the quants likewise.
/// </remarks>
public static class SuperBlocks
{
    public const int Size = TensorDTypeExtensions.SuperBlockSize;
    public const int Q4_KBytes = 2 + 2 + 12 + 128;
    public const int Q5_KBytes = 2 + 2 + 12 + 32 + 128;
    public const int Q6_KBytes = 128 + 64 + 16 + 2;

    /// <summary>The values the super-blocks of <paramref name="type"/> (Q4_K, Q5_K or Q6_K) stand for.</summary>
    public static void Dequantize(TensorDType type, ReadOnlySpan<byte> blocks, Span<float> values)
    {
        CheckLengths(type, values.Length, blocks.Length);
        int bytes = type.BlockBytes();
        Span<int> q = stackalloc int[Size];
        Span<byte> scales = stackalloc byte[8];
        Span<byte> mins = stackalloc byte[8];
        for (int b = 0; b < values.Length / Size; b++)
        {
            var block = blocks.Slice(b * bytes, bytes);
            var x = values.Slice(b * Size, Size);
            if (type == TensorDType.Q6_K)
            {
                UnpackQ6(block, q);
                float d = Half(block, 208);
                for (int i = 0; i < Size; i++)
                    x[i] = d * (sbyte)block[192 + i / 16] * (q[i] - 32);
                continue;
            }
            UnpackQ4Q5(block, type == TensorDType.Q5_K, q);
            UnpackScales(block.Slice(4, 12), scales, mins);
            float dScale = Half(block, 0), dMin = Half(block, 2);
            for (int i = 0; i < Size; i++)
                x[i] = dScale * scales[i / 32] * q[i] - dMin * mins[i / 32];
        }
    }

    /// <summary>Quantizes <paramref name="values"/> (a whole number of super-blocks) into blocks of <paramref name="type"/>.</summary>
    public static void Quantize(TensorDType type, ReadOnlySpan<float> values, Span<byte> blocks)
    {
        CheckLengths(type, values.Length, blocks.Length);
        int bytes = type.BlockBytes();
        for (int b = 0; b < values.Length / Size; b++)
        {
            var x = values.Slice(b * Size, Size);
            var block = blocks.Slice(b * bytes, bytes);
            if (type == TensorDType.Q6_K)
                QuantizeQ6(x, block);
            else
                QuantizeQ4Q5(x, type == TensorDType.Q5_K, block);
        }
    }

    /// <summary>The eight 6-bit scales and mins of a Q4_K or Q5_K super-block from its 12 scale bytes.</summary>
    internal static void UnpackScales(ReadOnlySpan<byte> packed, Span<byte> scales, Span<byte> mins)
    {
        uint low = BinaryPrimitives.ReadUInt32LittleEndian(packed);
        uint middle = BinaryPrimitives.ReadUInt32LittleEndian(packed[4..]);
        uint high = BinaryPrimitives.ReadUInt32LittleEndian(packed[8..]);
        BinaryPrimitives.WriteUInt32LittleEndian(scales, low & 0x3F3F3F3F);
        BinaryPrimitives.WriteUInt32LittleEndian(mins, middle & 0x3F3F3F3F);
        BinaryPrimitives.WriteUInt32LittleEndian(scales[4..], (high & 0x0F0F0F0F) | (low >> 6 & 0x03030303) << 4);
        BinaryPrimitives.WriteUInt32LittleEndian(mins[4..], (high >> 4 & 0x0F0F0F0F) | (middle >> 6 & 0x03030303) << 4);
    }

    private static void PackScales(ReadOnlySpan<int> scales, ReadOnlySpan<int> mins, Span<byte> packed)
    {
        for (int j = 0; j < 4; j++)
        {
            packed[j] = (byte)(scales[j] | (scales[j + 4] >> 4) << 6);
            packed[j + 4] = (byte)(mins[j] | (mins[j + 4] >> 4) << 6);
            packed[j + 8] = (byte)((scales[j + 4] & 0x0F) | (mins[j + 4] & 0x0F) << 4);
        }
    }

    /// <summary>Element i's quant (0–15, or 0–31 for Q5_K) of a Q4_K or Q5_K super-block.</summary>
    internal static void UnpackQ4Q5(ReadOnlySpan<byte> block, bool fifthBit, Span<int> q)
    {
        var qs = block.Slice(fifthBit ? 48 : 16, 128);
        var qh = fifthBit ? block.Slice(16, 32) : default;
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
            {
                byte packed = qs[32 * c + l];
                q[64 * c + l] = (packed & 0x0F) | (fifthBit ? (qh[l] >> (2 * c) & 1) << 4 : 0);
                q[64 * c + 32 + l] = (packed >> 4) | (fifthBit ? (qh[l] >> (2 * c + 1) & 1) << 4 : 0);
            }
    }

    private static void PackQ4Q5(ReadOnlySpan<int> q, bool fifthBit, Span<byte> block)
    {
        var qs = block.Slice(fifthBit ? 48 : 16, 128);
        var qh = fifthBit ? block.Slice(16, 32) : default;
        if (fifthBit)
            qh.Clear();
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
            {
                int first = q[64 * c + l], second = q[64 * c + 32 + l];
                qs[32 * c + l] = (byte)((first & 0x0F) | (second & 0x0F) << 4);
                if (fifthBit)
                    qh[l] |= (byte)((first >> 4 & 1) << (2 * c) | (second >> 4 & 1) << (2 * c + 1));
            }
    }

    /// <summary>Element i's quant (0–63, before the offset of 32) of a Q6_K super-block.</summary>
    internal static void UnpackQ6(ReadOnlySpan<byte> block, Span<int> q)
    {
        for (int half = 0; half < 2; half++)
        {
            var ql = block.Slice(64 * half, 64);
            var qh = block.Slice(128 + 32 * half, 32);
            var x = q.Slice(128 * half, 128);
            for (int l = 0; l < 32; l++)
            {
                x[l] = (ql[l] & 0x0F) | (qh[l] & 3) << 4;
                x[32 + l] = (ql[32 + l] & 0x0F) | (qh[l] >> 2 & 3) << 4;
                x[64 + l] = (ql[l] >> 4) | (qh[l] >> 4 & 3) << 4;
                x[96 + l] = (ql[32 + l] >> 4) | (qh[l] >> 6 & 3) << 4;
            }
        }
    }

    private static void PackQ6(ReadOnlySpan<int> q, Span<byte> block)
    {
        for (int half = 0; half < 2; half++)
        {
            var ql = block.Slice(64 * half, 64);
            var qh = block.Slice(128 + 32 * half, 32);
            var x = q.Slice(128 * half, 128);
            for (int l = 0; l < 32; l++)
            {
                ql[l] = (byte)((x[l] & 0x0F) | (x[64 + l] & 0x0F) << 4);
                ql[32 + l] = (byte)((x[32 + l] & 0x0F) | (x[96 + l] & 0x0F) << 4);
                qh[l] = (byte)(x[l] >> 4 | (x[32 + l] >> 4) << 2 | (x[64 + l] >> 4) << 4 | (x[96 + l] >> 4) << 6);
            }
        }
    }

    private static void QuantizeQ4Q5(ReadOnlySpan<float> x, bool fifthBit, Span<byte> block)
    {
        int top = fifthBit ? 31 : 15;
        Span<float> scale = stackalloc float[8];
        Span<float> min = stackalloc float[8];
        for (int j = 0; j < 8; j++)
        {
            var sub = x.Slice(32 * j, 32);
            float lo = 0, hi = float.MinValue;
            foreach (float v in sub)
            {
                lo = MathF.Min(lo, v);
                hi = MathF.Max(hi, v);
            }
            scale[j] = (hi - lo) / top;
            min[j] = -lo;
        }
        float dScale = RoundToF16(Max(scale) / 63), dMin = RoundToF16(Max(min) / 63);
        Span<int> sc = stackalloc int[8];
        Span<int> m = stackalloc int[8];
        Span<int> q = stackalloc int[Size];
        for (int j = 0; j < 8; j++)
        {
            sc[j] = dScale > 0 ? Math.Clamp((int)MathF.Round(scale[j] / dScale), 0, 63) : 0;
            m[j] = dMin > 0 ? Math.Clamp((int)MathF.Round(min[j] / dMin), 0, 63) : 0;
            float step = dScale * sc[j], offset = dMin * m[j];
            for (int i = 32 * j; i < 32 * j + 32; i++)
                q[i] = step > 0 ? Math.Clamp((int)MathF.Round((x[i] + offset) / step), 0, top) : 0;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(block, WeightConvert.ToF16(dScale));
        BinaryPrimitives.WriteUInt16LittleEndian(block[2..], WeightConvert.ToF16(dMin));
        PackScales(sc, m, block.Slice(4, 12));
        PackQ4Q5(q, fifthBit, block);
    }

    private static void QuantizeQ6(ReadOnlySpan<float> x, Span<byte> block)
    {
        Span<float> scale = stackalloc float[16];
        float largest = 0;
        for (int j = 0; j < 16; j++)
        {
            float extreme = 0;
            foreach (float v in x.Slice(16 * j, 16))
                if (MathF.Abs(v) > MathF.Abs(extreme))
                    extreme = v;
            scale[j] = extreme / -32;
            if (MathF.Abs(scale[j]) > MathF.Abs(largest))
                largest = scale[j];
        }
        float d = RoundToF16(largest / -128);
        Span<int> q = stackalloc int[Size];
        for (int j = 0; j < 16; j++)
        {
            int sc = d != 0 ? Math.Clamp((int)MathF.Round(scale[j] / d), -128, 127) : 0;
            block[192 + j] = (byte)(sbyte)sc;
            float step = d * sc;
            for (int i = 16 * j; i < 16 * j + 16; i++)
                q[i] = (step != 0 ? Math.Clamp((int)MathF.Round(x[i] / step), -32, 31) : 0) + 32;
        }
        PackQ6(q, block);
        BinaryPrimitives.WriteUInt16LittleEndian(block[208..], WeightConvert.ToF16(d));
    }

    private static float Max(ReadOnlySpan<float> values)
    {
        float max = 0;
        foreach (float v in values)
            max = MathF.Max(max, v);
        return max;
    }

    private static float RoundToF16(float value) => WeightConvert.FromF16(WeightConvert.ToF16(value));

    private static float Half(ReadOnlySpan<byte> block, int offset) =>
        WeightConvert.FromF16(BinaryPrimitives.ReadUInt16LittleEndian(block[offset..]));

    private static void CheckLengths(TensorDType type, int values, int bytes)
    {
        if (!type.IsSuperBlock())
            throw new ArgumentException($"{type} is not one of the k-quants (Q4_K, Q5_K, Q6_K)", nameof(type));
        if (values % Size != 0 || (long)values / Size * type.BlockBytes() != bytes)
            throw new ArgumentException($"{type} blocks: {values} values and {bytes} bytes are not the same whole number of {Size}-value, {type.BlockBytes()}-byte blocks");
    }
}
