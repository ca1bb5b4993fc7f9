using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// How one k-step of a packed panel (the 32 weights of 32 output rows at one input column) is stored and
/// widened to float32 in registers. The kernels are generic over these structs, so each format gets its
/// own specialised code.
/// </summary>
/// <remarks>
/// 16-bit panels interleave rows in pairs: 32-bit word j holds row j in its low half and row j + 16 in its
/// high half. One 512-bit load then widens to rows 0–15 with a shift and to rows 16–31 with a mask, with
/// no cross-lane shuffles.
/// </remarks>
internal unsafe interface IWeightFormat
{
    static abstract TensorDType DType { get; }

    /// <summary>Bytes of one k-step: 32 elements.</summary>
    static abstract int StepBytes { get; }

    /// <summary>Element position of a panel row within a k-step.</summary>
    static abstract int Slot(int row);

    static abstract void Store(void* step, int row, float value);

    static abstract float Load(void* step, int row);

    /// <summary>Rows 0–15 and 16–31 of one k-step.</summary>
    static abstract void Load(void* step, out Vector512<float> rows0, out Vector512<float> rows16);

    /// <summary>Rows 0–7, 8–15, 16–23 and 24–31 of one k-step.</summary>
    static abstract void Load(void* step, out Vector256<float> rows0, out Vector256<float> rows8,
        out Vector256<float> rows16, out Vector256<float> rows24);
}

internal readonly unsafe struct F32Weights : IWeightFormat
{
    public static TensorDType DType => TensorDType.F32;
    public static int StepBytes => 32 * sizeof(float);
    public static int Slot(int row) => row;
    public static void Store(void* step, int row, float value) => ((float*)step)[row] = value;
    public static float Load(void* step, int row) => ((float*)step)[row];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(void* step, out Vector512<float> rows0, out Vector512<float> rows16)
    {
        rows0 = Vector512.Load((float*)step);
        rows16 = Vector512.Load((float*)step + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(void* step, out Vector256<float> rows0, out Vector256<float> rows8,
        out Vector256<float> rows16, out Vector256<float> rows24)
    {
        rows0 = Vector256.Load((float*)step);
        rows8 = Vector256.Load((float*)step + 8);
        rows16 = Vector256.Load((float*)step + 16);
        rows24 = Vector256.Load((float*)step + 24);
    }
}

internal readonly unsafe struct Bf16Weights : IWeightFormat
{
    public static TensorDType DType => TensorDType.BF16;
    public static int StepBytes => 32 * sizeof(ushort);
    public static int Slot(int row) => row < 16 ? 2 * row : 2 * row - 31;
    public static void Store(void* step, int row, float value) => ((ushort*)step)[Slot(row)] = WeightConvert.ToBf16(value);
    public static float Load(void* step, int row) => WeightConvert.FromBf16(((ushort*)step)[Slot(row)]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(void* step, out Vector512<float> rows0, out Vector512<float> rows16)
    {
        var words = Vector512.Load((uint*)step);
        rows0 = (words << 16).AsSingle();
        rows16 = (words & Vector512.Create(0xFFFF0000u)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(void* step, out Vector256<float> rows0, out Vector256<float> rows8,
        out Vector256<float> rows16, out Vector256<float> rows24)
    {
        var a = Vector256.Load((uint*)step);
        var b = Vector256.Load((uint*)step + 8);
        var high = Vector256.Create(0xFFFF0000u);
        rows0 = (a << 16).AsSingle();
        rows8 = (b << 16).AsSingle();
        rows16 = (a & high).AsSingle();
        rows24 = (b & high).AsSingle();
    }
}

internal readonly unsafe struct F16Weights : IWeightFormat
{
    public static TensorDType DType => TensorDType.F16;
    public static int StepBytes => 32 * sizeof(ushort);
    public static int Slot(int row) => Bf16Weights.Slot(row);
    public static void Store(void* step, int row, float value) => ((ushort*)step)[Slot(row)] = WeightConvert.ToF16(value);
    public static float Load(void* step, int row) => WeightConvert.FromF16(((ushort*)step)[Slot(row)]);

    private const float TwoPow112 = 5192296858534827628530496329220096f;

    // x86 has vcvtph2ps, but .NET does not expose it; this bit trick costs ~8 simple ops per 16 values.
    // A half shifted into float position (exponent field aligned at bit 23) reads as a float 2^112 too
    // small; multiplying by 2^112 rebiases the exponent and also normalises half subnormals exactly.
    // Only exponent 31 (inf/NaN) needs a fix-up: it must become float exponent 255.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(void* step, out Vector512<float> rows0, out Vector512<float> rows16)
    {
        var words = Vector512.Load((uint*)step);
        rows0 = Widen(words << 16);
        rows16 = Widen(words);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load(void* step, out Vector256<float> rows0, out Vector256<float> rows8,
        out Vector256<float> rows16, out Vector256<float> rows24)
    {
        var a = Vector256.Load((uint*)step);
        var b = Vector256.Load((uint*)step + 8);
        rows0 = Widen(a << 16);
        rows8 = Widen(b << 16);
        rows16 = Widen(a);
        rows24 = Widen(b);
    }

    /// <summary>Widens the half held in the high 16 bits of each lane (low bits ignored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(Vector512<uint> high)
    {
        var magnitude = (high & Vector512.Create(0x7FFF0000u)) >> 3;
        var value = magnitude.AsSingle() * Vector512.Create(TwoPow112);
        var special = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x0F800000u)) & Vector512.Create(0x7F800000u);
        return (value.AsUInt32() | special | (high & Vector512.Create(0x80000000u))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(Vector256<uint> high)
    {
        var magnitude = (high & Vector256.Create(0x7FFF0000u)) >> 3;
        var value = magnitude.AsSingle() * Vector256.Create(TwoPow112);
        var special = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x0F800000u)) & Vector256.Create(0x7F800000u);
        return (value.AsUInt32() | special | (high & Vector256.Create(0x80000000u))).AsSingle();
    }
}

/// <summary>Scalar float32 ⇄ 16-bit conversions used when packing and by the scalar kernels.</summary>
public static class WeightConvert
{
    /// <summary>float32 → bfloat16, rounding to nearest even; NaN stays a (quiet) NaN.</summary>
    public static ushort ToBf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
            return (ushort)((bits >> 16) | 0x0040);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
    }

    public static float FromBf16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>float32 → IEEE half, rounding to nearest even (what the Half conversion does).</summary>
    public static ushort ToF16(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    public static float FromF16(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Values stored as <paramref name="dtype"/> (little-endian bytes; whole blocks of a quantized type) widened to float32.</summary>
    public static void ToSingle(ReadOnlySpan<byte> stored, TensorDType dtype, Span<float> destination)
    {
        switch (dtype)
        {
            case TensorDType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(stored).CopyTo(destination);
                break;
            case TensorDType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(stored), destination);
                break;
            case TensorDType.Q8_0:
                Q8Block.Dequantize(stored, destination);
                break;
            case TensorDType.Q4_0 or TensorDType.Q4_1 or TensorDType.Q5_0 or TensorDType.Q5_1:
                SmallBlocks.Dequantize(dtype, stored, destination);
                break;
            case TensorDType.Q4_K or TensorDType.Q5_K or TensorDType.Q6_K:
                SuperBlocks.Dequantize(dtype, stored, destination);
                break;
            default:
                // bfloat16 is the top half of a float32.
                var bf16 = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(stored);
                var bits = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(destination);
                for (int i = 0; i < bf16.Length; i++) bits[i] = (uint)bf16[i] << 16;
                break;
        }
    }

    /// <summary>The value a weight has once stored as <paramref name="storage"/>, a plain (not quantized) type.</summary>
    public static float Round(float value, TensorDType storage) => storage switch
    {
        TensorDType.F32 => value,
        TensorDType.BF16 => FromBf16(ToBf16(value)),
        TensorDType.F16 => FromF16(ToF16(value)),
        _ => throw new ArgumentException($"{storage} rounds a block at a time, not one value", nameof(storage)),
    };
}
