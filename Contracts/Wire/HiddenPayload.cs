using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FtpCluster.Compute.Kernels.Cpu;

namespace FtpCluster.Grains.Wire;

/// <summary>
/// Hidden rows to and from the bytes of a packet's hidden payload, one layout per <see cref="WireEncoding"/>.
/// </summary>
/// <remarks>
/// Layouts, little-endian, no padding:
/// <list type="bullet">
/// <item>F32: rows × hidden float32. F16, BF16: rows × hidden 16-bit values.</item>
/// <item>Int8: every scale first (float32, row-major [rows, groups per row]), then rows × hidden int8 values.
/// A group is a whole row (<see cref="WireEncoding.Int8PerRow"/>) or 32 consecutive values of a row
/// (<see cref="WireEncoding.Int8PerBlock32"/>; the last group of a row is shorter when hidden is not a
/// multiple of 32). Value = int8 × scale; scale = max |group| / 127, so the error is at most half a step,
/// max |group| / 254.</item>
/// </list>
/// The vector loops use <see cref="Vector256"/>: these conversions are memory-bound, and 256 bits is what
/// every x64 machine with AVX2 accelerates (on AVX-512 hardware wider vectors do not move memory faster).
/// </remarks>
internal static class HiddenPayload
{
    public const int BlockLength = 32;

    private const uint MagnitudeMask = 0x7FFF_FFFFu;
    private const uint InfinityBits = 0x7F80_0000u;

    public static long Bytes(int rows, int hidden, WireEncoding encoding) => encoding switch
    {
        WireEncoding.F32 => (long)rows * hidden * sizeof(float),
        WireEncoding.F16 or WireEncoding.BF16 => (long)rows * hidden * sizeof(ushort),
        WireEncoding.Int8PerRow or WireEncoding.Int8PerBlock32 =>
            (long)rows * (hidden + sizeof(float) * GroupsPerRow(hidden, encoding)),
        _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "not a wire encoding"),
    };

    public static void Encode(ReadOnlySpan<float> values, int hidden, WireEncoding encoding, Span<byte> payload)
    {
        switch (encoding)
        {
            case WireEncoding.F32:
                MemoryMarshal.AsBytes(values).CopyTo(payload);
                break;
            case WireEncoding.F16:
                TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<byte, Half>(payload));
                break;
            case WireEncoding.BF16:
                ToBf16(values, MemoryMarshal.Cast<byte, ushort>(payload));
                break;
            default:
                Quantise(values, hidden, encoding, payload);
                break;
        }
    }

    public static void Decode(ReadOnlySpan<byte> payload, int hidden, WireEncoding encoding, Span<float> values)
    {
        switch (encoding)
        {
            case WireEncoding.F32:
                payload.CopyTo(MemoryMarshal.AsBytes(values));
                break;
            case WireEncoding.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(payload), values);
                break;
            case WireEncoding.BF16:
                FromBf16(MemoryMarshal.Cast<byte, ushort>(payload), values);
                break;
            default:
                Dequantise(payload, hidden, encoding, values);
                break;
        }
    }

    /// <summary>The int8 scales of a payload, for checking them before use.</summary>
    public static ReadOnlySpan<float> Scales(ReadOnlySpan<byte> payload, int rows, int hidden, WireEncoding encoding) =>
        MemoryMarshal.Cast<byte, float>(payload[..(rows * GroupsPerRow(hidden, encoding) * sizeof(float))]);

    private static int GroupLength(int hidden, WireEncoding encoding) =>
        encoding == WireEncoding.Int8PerRow ? hidden : BlockLength;

    private static int GroupsPerRow(int hidden, WireEncoding encoding)
    {
        int length = GroupLength(hidden, encoding);
        return (hidden + length - 1) / length;
    }

    private static void ToBf16(ReadOnlySpan<float> values, Span<ushort> bf16)
    {
        ref float source = ref MemoryMarshal.GetReference(values);
        ref ushort target = ref MemoryMarshal.GetReference(bf16);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= values.Length - 16; i += 16)
            {
                var low = RoundToBf16(Vector256.LoadUnsafe(ref source, (nuint)i));
                var high = RoundToBf16(Vector256.LoadUnsafe(ref source, (nuint)i + 8));
                Vector256.Narrow(low, high).StoreUnsafe(ref target, (nuint)i);
            }
        }
        for (; i < values.Length; i++)
            bf16[i] = WeightConvert.ToBf16(values[i]);
    }

    /// <summary><see cref="WeightConvert.ToBf16"/> on eight lanes; the bfloat16 sits in the low half of each.</summary>
    private static Vector256<uint> RoundToBf16(Vector256<float> x)
    {
        var bits = x.AsUInt32();
        var nearestEven = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        // Rounding could carry a NaN's payload into the exponent and make it infinity; keep it a quiet NaN.
        var quietNaN = (bits >> 16) | Vector256.Create(0x40u);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x).AsUInt32(), nearestEven, quietNaN);
    }

    private static void FromBf16(ReadOnlySpan<ushort> bf16, Span<float> values)
    {
        ref ushort source = ref MemoryMarshal.GetReference(bf16);
        ref float target = ref MemoryMarshal.GetReference(values);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= values.Length - 16; i += 16)
            {
                var (low, high) = Vector256.Widen(Vector256.LoadUnsafe(ref source, (nuint)i));
                (low << 16).AsSingle().StoreUnsafe(ref target, (nuint)i);
                (high << 16).AsSingle().StoreUnsafe(ref target, (nuint)i + 8);
            }
        }
        for (; i < values.Length; i++)
            values[i] = WeightConvert.FromBf16(bf16[i]);
    }

    private static void Quantise(ReadOnlySpan<float> values, int hidden, WireEncoding encoding, Span<byte> payload)
    {
        int rows = values.Length / hidden;
        int groupLength = GroupLength(hidden, encoding);
        int groups = GroupsPerRow(hidden, encoding);
        var scales = MemoryMarshal.Cast<byte, float>(payload[..(rows * groups * sizeof(float))]);
        var quantised = MemoryMarshal.Cast<byte, sbyte>(payload[(rows * groups * sizeof(float))..]);
        for (int r = 0; r < rows; r++)
        {
            var row = values.Slice(r * hidden, hidden);
            for (int g = 0; g < groups; g++)
            {
                int start = g * groupLength;
                var group = row.Slice(start, Math.Min(groupLength, hidden - start));
                uint maxBits = MaxMagnitudeBits(group);
                if (maxBits >= InfinityBits)
                    throw NotFinite(row, r);
                scales[r * groups + g] = QuantiseGroup(group, BitConverter.UInt32BitsToSingle(maxBits),
                    quantised.Slice(r * hidden + start, group.Length));
            }
        }
    }

    /// <summary>
    /// The largest |x| of a group, as float bits. Read as unsigned integers, the bits of non-negative floats
    /// sort like the floats, with infinity and NaN above every finite value, so one integer max finds both
    /// the scale and any value int8 cannot carry.
    /// </summary>
    private static uint MaxMagnitudeBits(ReadOnlySpan<float> group)
    {
        var bits = MemoryMarshal.Cast<float, uint>(group);
        ref uint source = ref MemoryMarshal.GetReference(bits);
        uint max = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated && bits.Length >= 8)
        {
            var lanes = Vector256<uint>.Zero;
            for (; i <= bits.Length - 8; i += 8)
                lanes = Vector256.Max(lanes, Vector256.LoadUnsafe(ref source, (nuint)i) & Vector256.Create(MagnitudeMask));
            // Fold the eight lanes in three halvings rather than eight scalar steps: for 32-value blocks this
            // reduction is as long as the loop.
            lanes = Vector256.Max(lanes, Vector256.Shuffle(lanes, Vector256.Create(4u, 5, 6, 7, 0, 1, 2, 3)));
            lanes = Vector256.Max(lanes, Vector256.Shuffle(lanes, Vector256.Create(2u, 3, 0, 1, 6, 7, 4, 5)));
            lanes = Vector256.Max(lanes, Vector256.Shuffle(lanes, Vector256.Create(1u, 0, 3, 2, 5, 4, 7, 6)));
            max = lanes.ToScalar();
        }
        for (; i < bits.Length; i++)
            max = Math.Max(max, bits[i] & MagnitudeMask);
        return max;
    }

    /// <summary>Writes round(x · 127 / max) for each x of the group and returns the scale that undoes it.</summary>
    private static float QuantiseGroup(ReadOnlySpan<float> group, float maxMagnitude, Span<sbyte> quantised)
    {
        float inverse = 127f / maxMagnitude;
        // All zeros, or so small (below ~4e-37) that 127 / max overflows: zeros with scale 0 are exact,
        // or off by less than 4e-37.
        if (!float.IsFinite(inverse))
        {
            quantised.Clear();
            return 0f;
        }

        ref float source = ref MemoryMarshal.GetReference(group);
        ref sbyte target = ref MemoryMarshal.GetReference(quantised);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var inverses = Vector256.Create(inverse);
            for (; i <= group.Length - 32; i += 32)
            {
                var q0 = RoundToInt32(Vector256.LoadUnsafe(ref source, (nuint)i) * inverses);
                var q1 = RoundToInt32(Vector256.LoadUnsafe(ref source, (nuint)i + 8) * inverses);
                var q2 = RoundToInt32(Vector256.LoadUnsafe(ref source, (nuint)i + 16) * inverses);
                var q3 = RoundToInt32(Vector256.LoadUnsafe(ref source, (nuint)i + 24) * inverses);
                Vector256.Narrow(Vector256.Narrow(q0, q1), Vector256.Narrow(q2, q3)).StoreUnsafe(ref target, (nuint)i);
            }
        }
        for (; i < group.Length; i++)
            quantised[i] = (sbyte)MathF.Round(group[i] * inverse);
        return maxMagnitude / 127f;
    }

    // Both Round and MathF.Round round halves to even, so the vector body and the scalar tail agree.
    private static Vector256<int> RoundToInt32(Vector256<float> x) => Vector256.ConvertToInt32(Vector256.Round(x));

    private static void Dequantise(ReadOnlySpan<byte> payload, int hidden, WireEncoding encoding, Span<float> values)
    {
        int rows = values.Length / hidden;
        int groupLength = GroupLength(hidden, encoding);
        int groups = GroupsPerRow(hidden, encoding);
        var scales = Scales(payload, rows, hidden, encoding);
        var quantised = MemoryMarshal.Cast<byte, sbyte>(payload[(rows * groups * sizeof(float))..]);
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < groups; g++)
            {
                int start = r * hidden + g * groupLength;
                int length = Math.Min(groupLength, hidden - g * groupLength);
                DequantiseGroup(quantised.Slice(start, length), scales[r * groups + g], values.Slice(start, length));
            }
        }
    }

    private static void DequantiseGroup(ReadOnlySpan<sbyte> quantised, float scale, Span<float> group)
    {
        ref sbyte source = ref MemoryMarshal.GetReference(quantised);
        ref float target = ref MemoryMarshal.GetReference(group);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var scales = Vector256.Create(scale);
            for (; i <= group.Length - 32; i += 32)
            {
                var (low, high) = Vector256.Widen(Vector256.LoadUnsafe(ref source, (nuint)i));
                var (q0, q1) = Vector256.Widen(low);
                var (q2, q3) = Vector256.Widen(high);
                (Vector256.ConvertToSingle(q0) * scales).StoreUnsafe(ref target, (nuint)i);
                (Vector256.ConvertToSingle(q1) * scales).StoreUnsafe(ref target, (nuint)i + 8);
                (Vector256.ConvertToSingle(q2) * scales).StoreUnsafe(ref target, (nuint)i + 16);
                (Vector256.ConvertToSingle(q3) * scales).StoreUnsafe(ref target, (nuint)i + 24);
            }
        }
        for (; i < group.Length; i++)
            group[i] = quantised[i] * scale;
    }

    private static ArgumentException NotFinite(ReadOnlySpan<float> row, int rowIndex)
    {
        int column = 0;
        while (float.IsFinite(row[column]))
            column++;
        return new ArgumentException(
            $"row {rowIndex} holds {row[column]} at column {column}: int8 encodings cannot carry NaN or infinity; " +
            "send this deployment's activations as f32, f16 or bf16, or find where the row overflowed");
    }
}
