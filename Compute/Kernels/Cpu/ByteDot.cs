using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>acc (8 int32 lanes) += the sums of 4 products of unsigned weight bytes and signed x bytes: lane i takes bytes 4i–4i+3.</summary>
internal interface IByteDot
{
    static abstract Vector256<int> Add(Vector256<int> acc, Vector256<byte> weights, Vector256<sbyte> x);
}

/// <summary>One AVX-VNNI vpdpbusd.</summary>
internal readonly struct VnniDot : IByteDot
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Add(Vector256<int> acc, Vector256<byte> weights, Vector256<sbyte> x) =>
        AvxVnni.MultiplyWideningAndAdd(acc, weights, x);
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
}
