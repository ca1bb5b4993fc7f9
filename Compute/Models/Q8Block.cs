using System.Buffers.Binary;
using FtpCluster.Compute.Kernels.Cpu;

namespace FtpCluster.Compute.Models;

/// <summary>
/// llama.cpp's Q8_0 block, bit for bit: a little-endian f16 scale d, then 32 int8 quants q; element i is
/// d · q[i]. Quantizing follows llama.cpp's reference rounding: d = max|x| / 127, q = round(x / d) with
/// halves away from zero, and the stored d is that value rounded to f16.
/// </summary>
public static class Q8Block
{
    /// <summary>Elements per block.</summary>
    public const int Size = 32;

    /// <summary>Bytes per block: the f16 scale and the quants.</summary>
    public const int Bytes = 2 + Size;

    /// <summary>Quantizes <paramref name="values"/> (a whole number of blocks) into <paramref name="blocks"/>.</summary>
    public static void Quantize(ReadOnlySpan<float> values, Span<byte> blocks)
    {
        CheckLengths(values.Length, blocks.Length);
        for (int b = 0; b < values.Length / Size; b++)
        {
            var x = values.Slice(b * Size, Size);
            var block = blocks.Slice(b * Bytes, Bytes);
            float d = Scale(x, out float inverse);
            BinaryPrimitives.WriteUInt16LittleEndian(block, WeightConvert.ToF16(d));
            for (int i = 0; i < Size; i++)
                block[2 + i] = (byte)(sbyte)MathF.Round(x[i] * inverse, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>The values <paramref name="blocks"/> stand for, into <paramref name="values"/> (a whole number of blocks).</summary>
    public static void Dequantize(ReadOnlySpan<byte> blocks, Span<float> values)
    {
        CheckLengths(values.Length, blocks.Length);
        for (int b = 0; b < values.Length / Size; b++)
        {
            var block = blocks.Slice(b * Bytes, Bytes);
            float d = WeightConvert.FromF16(BinaryPrimitives.ReadUInt16LittleEndian(block));
            var x = values.Slice(b * Size, Size);
            for (int i = 0; i < Size; i++)
                x[i] = d * (sbyte)block[2 + i];
        }
    }

    /// <summary>d = max|x| / 127 for one block, and 1/d (0 for an all-zero block).</summary>
    internal static float Scale(ReadOnlySpan<float> block, out float inverse)
    {
        float max = 0;
        foreach (float v in block)
            max = MathF.Max(max, MathF.Abs(v));
        float d = max / 127;
        inverse = d != 0 ? 1 / d : 0;
        return d;
    }

    private static void CheckLengths(int values, int bytes)
    {
        if (values % Size != 0 || (long)values / Size * Bytes != bytes)
            throw new ArgumentException($"Q8_0 blocks: {values} values and {bytes} bytes are not the same whole number of {Size}-value, {Bytes}-byte blocks");
    }
}
