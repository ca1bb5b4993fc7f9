using System.Buffers.Binary;
using FtpCluster.Compute.Kernels.Cpu;

namespace FtpCluster.Compute.Models;

/// <summary>
/// llama.cpp's 4- and 5-bit blocks of 32 elements, bit for bit (all little-endian):
/// <list type="bullet">
/// <item>Q4_0 (18 bytes): f16 d, 16 bytes qs; element j &lt; 16 is the low nibble of qs[j], element j + 16 its high
/// nibble; value d · (q − 8).</item>
/// <item>Q4_1 (20 bytes): f16 d, f16 m, qs as Q4_0; value d · q + m.</item>
/// <item>Q5_0 (22 bytes): f16 d, uint32 qh, qs as Q4_0; bit j of qh is the fifth bit of element j; value d · (q − 16).</item>
/// <item>Q5_1 (24 bytes): f16 d, f16 m, qh, qs as Q5_0; value d · q + m.</item>
/// </list>
/// Quantizing follows llama.cpp's reference quantizer (quantize_row_q4_0_ref and its siblings): the symmetric types
/// take d = v / −8 (−16 for Q5_0), v the element of largest magnitude with its sign, so that element lands exactly on
/// the end of the range, and q = trunc(x / d + 8.5) clamped to 15 (31); the types with a minimum take m = min x,
/// d = (max − min) / 15 (31) and q = trunc((x − m) / d + 0.5). Scales are computed in float32 and stored rounded to f16.
/// </summary>
public static class SmallBlocks
{
    public const int Size = 32;
    public const int Q4_0Bytes = 2 + 16;
    public const int Q4_1Bytes = 2 + 2 + 16;
    public const int Q5_0Bytes = 2 + 4 + 16;
    public const int Q5_1Bytes = 2 + 2 + 4 + 16;

    /// <summary>The values the blocks of <paramref name="type"/> (Q4_0, Q4_1, Q5_0 or Q5_1) stand for.</summary>
    public static void Dequantize(TensorDType type, ReadOnlySpan<byte> blocks, Span<float> values)
    {
        var (bytes, hasMin, fifthBit) = Shape(type);
        CheckLengths(type, values.Length, blocks.Length);
        Span<int> q = stackalloc int[Size];
        for (int b = 0; b < values.Length / Size; b++)
        {
            var block = blocks.Slice(b * bytes, bytes);
            float d = Half(block, 0);
            float m = hasMin ? Half(block, 2) : fifthBit ? -16 * d : -8 * d;
            Unpack(block, hasMin, fifthBit, q);
            var x = values.Slice(b * Size, Size);
            for (int i = 0; i < Size; i++)
                x[i] = d * q[i] + m;
        }
    }

    /// <summary>Quantizes <paramref name="values"/> (a whole number of blocks) into blocks of <paramref name="type"/>.</summary>
    public static void Quantize(TensorDType type, ReadOnlySpan<float> values, Span<byte> blocks)
    {
        var (bytes, hasMin, fifthBit) = Shape(type);
        CheckLengths(type, values.Length, blocks.Length);
        int top = fifthBit ? 31 : 15;
        Span<int> q = stackalloc int[Size];
        for (int b = 0; b < values.Length / Size; b++)
        {
            var x = values.Slice(b * Size, Size);
            var block = blocks.Slice(b * bytes, bytes);
            if (hasMin)
            {
                float min = float.MaxValue, max = float.MinValue;
                foreach (float v in x)
                {
                    min = MathF.Min(min, v);
                    max = MathF.Max(max, v);
                }
                float d = (max - min) / top;
                float inverse = d != 0 ? 1 / d : 0;
                for (int i = 0; i < Size; i++)
                    q[i] = Math.Min(top, (int)((x[i] - min) * inverse + 0.5f));
                BinaryPrimitives.WriteUInt16LittleEndian(block, WeightConvert.ToF16(d));
                BinaryPrimitives.WriteUInt16LittleEndian(block[2..], WeightConvert.ToF16(min));
            }
            else
            {
                float extreme = 0;
                foreach (float v in x)
                    if (MathF.Abs(v) > MathF.Abs(extreme))
                        extreme = v;
                // The quants' midpoint: 8 for Q4_0, 16 for Q5_0.
                int offset = (top + 1) / 2;
                float d = extreme / -offset;
                float inverse = d != 0 ? 1 / d : 0;
                float middle = offset + 0.5f;
                for (int i = 0; i < Size; i++)
                    q[i] = Math.Min(top, (int)(x[i] * inverse + middle));
                BinaryPrimitives.WriteUInt16LittleEndian(block, WeightConvert.ToF16(d));
            }
            Pack(q, hasMin, fifthBit, block);
        }
    }

    /// <summary>
    /// Element j's quant (0–15 or 0–31, before the offset) of one block: the nibbles, and for Q5 the fifth bits.
    /// </summary>
    internal static void Unpack(ReadOnlySpan<byte> block, bool hasMin, bool fifthBit, Span<int> q)
    {
        int quants = QuantsOffset(hasMin, fifthBit);
        uint high = fifthBit ? BinaryPrimitives.ReadUInt32LittleEndian(block[(hasMin ? 4 : 2)..]) : 0;
        for (int j = 0; j < Size / 2; j++)
        {
            byte packed = block[quants + j];
            q[j] = (packed & 0x0F) | (int)((high >> j) & 1) << 4;
            q[j + Size / 2] = (packed >> 4) | (int)((high >> (j + Size / 2)) & 1) << 4;
        }
    }

    private static void Pack(ReadOnlySpan<int> q, bool hasMin, bool fifthBit, Span<byte> block)
    {
        int quants = QuantsOffset(hasMin, fifthBit);
        uint high = 0;
        for (int j = 0; j < Size / 2; j++)
        {
            block[quants + j] = (byte)((q[j] & 0x0F) | (q[j + Size / 2] & 0x0F) << 4);
            high |= (uint)(q[j] >> 4 & 1) << j | (uint)(q[j + Size / 2] >> 4 & 1) << (j + Size / 2);
        }
        if (fifthBit)
            BinaryPrimitives.WriteUInt32LittleEndian(block[(hasMin ? 4 : 2)..], high);
    }

    private static int QuantsOffset(bool hasMin, bool fifthBit) => 2 + (hasMin ? 2 : 0) + (fifthBit ? 4 : 0);

    private static float Half(ReadOnlySpan<byte> block, int offset) =>
        WeightConvert.FromF16(BinaryPrimitives.ReadUInt16LittleEndian(block[offset..]));

    private static (int Bytes, bool HasMin, bool FifthBit) Shape(TensorDType type) => type switch
    {
        TensorDType.Q4_0 => (Q4_0Bytes, false, false),
        TensorDType.Q4_1 => (Q4_1Bytes, true, false),
        TensorDType.Q5_0 => (Q5_0Bytes, false, true),
        TensorDType.Q5_1 => (Q5_1Bytes, true, true),
        _ => throw new ArgumentException($"{type} is not one of the 4- and 5-bit block types (Q4_0, Q4_1, Q5_0, Q5_1)", nameof(type)),
    };

    private static void CheckLengths(TensorDType type, int values, int bytes)
    {
        if (values % Size != 0 || (long)values / Size * type.BlockBytes() != bytes)
            throw new ArgumentException($"{type} blocks: {values} values and {bytes} bytes are not the same whole number of {Size}-value, {type.BlockBytes()}-byte blocks");
    }
}
