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
/// Quantizing fits each sub-block's grid by least squares (the method is this project's own, not llama.cpp's search):
/// values are rounded against trial grids around the range-based one and the grid refit to each rounding, keeping the
/// least squared error; the sub-block scales (and Q4_K/Q5_K minimums) are then rounded to 6 or 8 bits against the
/// super-block's f16 factors, which are refit to the whole super-block once those are fixed. On random weights its
/// squared rounding error is 1–8% below llama.cpp's quantizer's without an importance matrix (GgufLlamaCppTests).
/// Minimums are never positive, as in llama.cpp's files.
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

    /// <summary>Trial divisors of a sub-block's range, around the quant count: each gives a grid to round against and refit.</summary>
    private static readonly float[] TrialSteps = [-1.5f, -1.25f, -1f, -0.75f, -0.5f, -0.25f, 0f, 0.25f, 0.5f, 0.75f, 1f, 1.25f, 1.5f];

    private static void QuantizeQ4Q5(ReadOnlySpan<float> x, bool fifthBit, Span<byte> block)
    {
        int top = fifthBit ? 31 : 15;
        Span<float> scale = stackalloc float[8];
        Span<float> min = stackalloc float[8];
        for (int j = 0; j < 8; j++)
            (scale[j], min[j]) = FitAffine(x.Slice(32 * j, 32), top);
        float dScale = RoundToF16(Max(scale) / 63), dMin = RoundToF16(Max(min) / 63);
        Span<int> sc = stackalloc int[8];
        Span<int> m = stackalloc int[8];
        for (int j = 0; j < 8; j++)
        {
            sc[j] = dScale > 0 ? Math.Clamp((int)MathF.Round(scale[j] / dScale), 0, 63) : 0;
            m[j] = dMin > 0 ? Math.Clamp((int)MathF.Round(min[j] / dMin), 0, 63) : 0;
        }
        Span<int> q = stackalloc int[Size];
        RoundAffine(x, sc, m, dScale, dMin, top, q);
        // The 6-bit scales and minimums fixed, the two f16 factors that multiply them are refit to the whole super-block
        // (least squares in d and dmin), and the quants rounded again against the refit grid when that lowers the error.
        if (RefitFactors(x, sc, m, q) is ({ } d, { } dm))
        {
            Span<int> refit = stackalloc int[Size];
            RoundAffine(x, sc, m, d, dm, top, refit);
            if (AffineError(x, sc, m, d, dm, refit) < AffineError(x, sc, m, dScale, dMin, q))
            {
                (dScale, dMin) = (d, dm);
                refit.CopyTo(q);
            }
        }
        BinaryPrimitives.WriteUInt16LittleEndian(block, WeightConvert.ToF16(dScale));
        BinaryPrimitives.WriteUInt16LittleEndian(block[2..], WeightConvert.ToF16(dMin));
        PackScales(sc, m, block.Slice(4, 12));
        PackQ4Q5(q, fifthBit, block);
    }

    /// <summary>
    /// The grid (value = scale · q − min, q in [0, top], min ≥ 0) with the least squared error over one sub-block that
    /// the trials find: the values are rounded against grids spanning [min(0, lowest), highest] in top + step steps,
    /// and scale and min refit to each rounding by least squares.
    /// </summary>
    private static (float Scale, float Min) FitAffine(ReadOnlySpan<float> x, int top)
    {
        float lo = 0, hi = float.MinValue;
        foreach (float v in x)
        {
            lo = MathF.Min(lo, v);
            hi = MathF.Max(hi, v);
        }
        float bestScale = (hi - lo) / top, bestMin = -lo;
        if (bestScale <= 0) return (0, bestMin);
        double bestError = AffineError(x, bestScale, bestMin, top);
        foreach (float step in TrialSteps)
        {
            float trial = (hi - lo) / (top + step);
            double n = x.Length, sq = 0, sqq = 0, sx = 0, sqx = 0;
            foreach (float v in x)
            {
                int q = Math.Clamp((int)MathF.Round((v - lo) / trial), 0, top);
                (sq, sqq, sx, sqx) = (sq + q, sqq + q * q, sx + v, sqx + q * v);
            }
            double determinant = n * sqq - sq * sq;
            if (determinant <= 0) continue;
            double scale = (n * sqx - sq * sx) / determinant, offset = (sx - scale * sq) / n;
            if (offset > 0) (scale, offset) = (sqx / sqq, 0); // the minimum is never positive
            if (scale <= 0) continue;
            double error = AffineError(x, (float)scale, (float)-offset, top);
            if (error < bestError) (bestError, bestScale, bestMin) = (error, (float)scale, (float)-offset);
        }
        return (bestScale, bestMin);
    }

    private static double AffineError(ReadOnlySpan<float> x, float scale, float min, int top)
    {
        double error = 0;
        foreach (float v in x)
        {
            int q = Math.Clamp((int)MathF.Round((v + min) / scale), 0, top);
            double e = scale * q - min - v;
            error += e * e;
        }
        return error;
    }

    /// <summary>Each value's quant against the stored grid of its sub-block: d · sc_j steps from −dmin · m_j.</summary>
    private static void RoundAffine(ReadOnlySpan<float> x, ReadOnlySpan<int> sc, ReadOnlySpan<int> m, float d, float dMin, int top, Span<int> q)
    {
        for (int i = 0; i < Size; i++)
        {
            float step = d * sc[i / 32], offset = dMin * m[i / 32];
            q[i] = step > 0 ? Math.Clamp((int)MathF.Round((x[i] + offset) / step), 0, top) : 0;
        }
    }

    private static double AffineError(ReadOnlySpan<float> x, ReadOnlySpan<int> sc, ReadOnlySpan<int> m, float d, float dMin, ReadOnlySpan<int> q)
    {
        double error = 0;
        for (int i = 0; i < Size; i++)
        {
            double e = (double)d * sc[i / 32] * q[i] - (double)dMin * m[i / 32] - x[i];
            error += e * e;
        }
        return error;
    }

    /// <summary>
    /// d and dmin (rounded to f16) minimizing Σ (d · sc_j · q_i − dmin · m_j − x_i)² for the given 6-bit scales, minimums
    /// and quants; null when the system is singular or gives a negative factor.
    /// </summary>
    private static (float? D, float? DMin) RefitFactors(ReadOnlySpan<float> x, ReadOnlySpan<int> sc, ReadOnlySpan<int> m, ReadOnlySpan<int> q)
    {
        double saa = 0, sab = 0, sbb = 0, sax = 0, sbx = 0;
        for (int i = 0; i < Size; i++)
        {
            double a = sc[i / 32] * q[i], b = -m[i / 32];
            (saa, sab, sbb, sax, sbx) = (saa + a * a, sab + a * b, sbb + b * b, sax + a * x[i], sbx + b * x[i]);
        }
        double determinant = saa * sbb - sab * sab;
        if (sbb == 0 || determinant <= 1e-12 * saa * sbb) return (null, null);
        double d = (sax * sbb - sab * sbx) / determinant, dMin = (saa * sbx - sab * sax) / determinant;
        return d > 0 && dMin >= 0 ? (RoundToF16((float)d), RoundToF16((float)dMin)) : (null, null);
    }

    private static void QuantizeQ6(ReadOnlySpan<float> x, Span<byte> block)
    {
        Span<float> scale = stackalloc float[16];
        float largest = 0;
        for (int j = 0; j < 16; j++)
        {
            scale[j] = FitSymmetric(x.Slice(16 * j, 16));
            if (MathF.Abs(scale[j]) > MathF.Abs(largest))
                largest = scale[j];
        }
        float d = RoundToF16(largest / -128);
        Span<int> sc = stackalloc int[16];
        for (int j = 0; j < 16; j++)
            sc[j] = d != 0 ? Math.Clamp((int)MathF.Round(scale[j] / d), -128, 127) : 0;
        Span<int> q = stackalloc int[Size];
        RoundSymmetric(x, sc, d, q);
        // As for Q4_K: the int8 scales fixed, d is refit to the super-block, and kept where it lowers the error.
        double sax = 0, saa = 0;
        for (int i = 0; i < Size; i++)
        {
            double a = sc[i / 16] * (q[i] - 32);
            (sax, saa) = (sax + a * x[i], saa + a * a);
        }
        if (saa > 0 && RoundToF16((float)(sax / saa)) is var refit && refit != 0)
        {
            Span<int> requantized = stackalloc int[Size];
            RoundSymmetric(x, sc, refit, requantized);
            if (SymmetricError(x, sc, refit, requantized) < SymmetricError(x, sc, d, q))
            {
                d = refit;
                requantized.CopyTo(q);
            }
        }
        for (int j = 0; j < 16; j++)
            block[192 + j] = (byte)(sbyte)sc[j];
        PackQ6(q, block);
        BinaryPrimitives.WriteUInt16LittleEndian(block[208..], WeightConvert.ToF16(d));
    }

    /// <summary>
    /// The scale of one 16-value sub-block's grid (value = scale · q, q in [−32, 31]) with the least squared error the
    /// trials find: the element of largest magnitude is put at −32 − step quants (so the wider, negative side of the
    /// range holds it), the values rounded, and the scale refit to the rounding by least squares.
    /// </summary>
    private static float FitSymmetric(ReadOnlySpan<float> x)
    {
        float extreme = 0;
        foreach (float v in x)
            if (MathF.Abs(v) > MathF.Abs(extreme))
                extreme = v;
        float best = extreme / -32;
        if (best == 0) return 0;
        double bestError = SymmetricError(x, best);
        foreach (float step in TrialSteps)
        {
            float trial = extreme / -(32 + step);
            double sqx = 0, sqq = 0;
            foreach (float v in x)
            {
                int q = Math.Clamp((int)MathF.Round(v / trial), -32, 31);
                (sqx, sqq) = (sqx + q * v, sqq + q * q);
            }
            if (sqq == 0) continue;
            float scale = (float)(sqx / sqq);
            double error = SymmetricError(x, scale);
            if (error < bestError) (bestError, best) = (error, scale);
        }
        return best;
    }

    private static double SymmetricError(ReadOnlySpan<float> x, float scale)
    {
        double error = 0;
        foreach (float v in x)
        {
            double e = scale * Math.Clamp((int)MathF.Round(v / scale), -32, 31) - v;
            error += e * e;
        }
        return error;
    }

    /// <summary>Each value's quant (0–63, the offset of 32 included) against its sub-block's stored step d · sc_j.</summary>
    private static void RoundSymmetric(ReadOnlySpan<float> x, ReadOnlySpan<int> sc, float d, Span<int> q)
    {
        for (int i = 0; i < Size; i++)
        {
            float step = d * sc[i / 16];
            q[i] = (step != 0 ? Math.Clamp((int)MathF.Round(x[i] / step), -32, 31) : 0) + 32;
        }
    }

    private static double SymmetricError(ReadOnlySpan<float> x, ReadOnlySpan<int> sc, float d, ReadOnlySpan<int> q)
    {
        double error = 0;
        for (int i = 0; i < Size; i++)
        {
            double e = (double)d * sc[i / 16] * (q[i] - 32) - x[i];
            error += e * e;
        }
        return error;
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
