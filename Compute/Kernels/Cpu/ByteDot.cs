using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>acc (8 int32 lanes) += the sums of 4 products of unsigned weight bytes and signed x bytes: lane i takes bytes 4i–4i+3.</summary>
internal interface IByteDot
{
    static abstract Vector256<int> Add(Vector256<int> acc, Vector256<byte> weights, Vector256<sbyte> x);

    /// <summary>
    /// As <see cref="Add"/>, each lane's sum times a sub-block scale: <paramref name="scales"/> holds the lane's scale
    /// in both of its int16 halves. Weight bytes up to 63 and x bytes in ±127 keep every pair sum inside int16.
    /// </summary>
    static abstract Vector256<int> AddScaled(Vector256<int> acc, Vector256<byte> weights, Vector256<sbyte> x, Vector256<short> scales);
}

/// <summary>One AVX-VNNI vpdpbusd.</summary>
internal readonly struct VnniDot : IByteDot
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Add(Vector256<int> acc, Vector256<byte> weights, Vector256<sbyte> x) =>
        AvxVnni.MultiplyWideningAndAdd(acc, weights, x);

    /// <summary>vpmaddubsw (pair sums in int16), then vpdpwssd multiplies them by the scales and adds: two instructions, no vpmulld.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> AddScaled(Vector256<int> acc, Vector256<byte> weights, Vector256<sbyte> x, Vector256<short> scales) =>
        AvxVnni.MultiplyWideningAndAdd(acc, Avx2.MultiplyAddAdjacent(weights, x), scales);
}

/// <summary>The same sums from widened int32 products, on any vector hardware.</summary>
internal readonly struct PortableDot : IByteDot
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Add(Vector256<int> acc, Vector256<byte> weights, Vector256<sbyte> x)
    {
        var w = weights.AsInt32();
        var s = x.AsInt32();
        for (int j = 0; j < 4; j++)
            acc += ((w >>> (8 * j)) & Vector256.Create(0xFF)) * ((s << (24 - 8 * j)) >> 24);
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> AddScaled(Vector256<int> acc, Vector256<byte> weights, Vector256<sbyte> x, Vector256<short> scales) =>
        acc + Add(Vector256<int>.Zero, weights, x) * ((scales.AsInt32() << 16) >> 16);
}
