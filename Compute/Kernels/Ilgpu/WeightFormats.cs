using ILGPU;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>
/// How a kernel reads one weight of a row-major [N, K] matrix as float32 from the device buffer that holds the
/// matrix in its storage type. The matrix kernels are generic over a struct implementing this, so ILGPU specializes
/// (and inlines) one kernel per storage type.
/// </summary>
internal interface IWeightFormat<TStorage>
    where TStorage : unmanaged
{
    /// <summary>Element <paramref name="k"/> of row <paramref name="row"/>, whose rows hold <paramref name="rowLength"/> elements.</summary>
    float Weight(ArrayView<TStorage> w, int row, int k, int rowLength);

    /// <summary>Elements k to k + 3 of the row, for k and <paramref name="rowLength"/> multiples of 4.</summary>
    WeightQuad Four(ArrayView<TStorage> w, int row, int k, int rowLength);
}

/// <summary>Four neighbouring weights of a row: what one lane of the GEMV reads per step.</summary>
internal readonly record struct WeightQuad(float W0, float W1, float W2, float W3)
{
    /// <summary>The four read one at a time, for formats with no wider read.</summary>
    public static WeightQuad OneByOne<TStorage, TFormat>(TFormat format, ArrayView<TStorage> w, int row, int k, int rowLength)
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage> => new(
        format.Weight(w, row, k, rowLength), format.Weight(w, row, k + 1, rowLength),
        format.Weight(w, row, k + 2, rowLength), format.Weight(w, row, k + 3, rowLength));

    /// <summary>The four scaled by g[k .. k + 3], or as they are where g is empty.</summary>
    public WeightQuad Times(ArrayView<float> g, long k) =>
        g.Length == 0 ? this : new(W0 * g[k], W1 * g[k + 1], W2 * g[k + 2], W3 * g[k + 3]);

    /// <summary>Σ x[at + i] · Wi.</summary>
    public float Dot(ArrayView<float> x, long at) => x[at] * W0 + x[at + 1] * W1 + x[at + 2] * W2 + x[at + 3] * W3;
}

internal readonly struct F32Weights : IWeightFormat<float>
{
    public float Weight(ArrayView<float> w, int row, int k, int rowLength) => w[(long)row * rowLength + k];

    public WeightQuad Four(ArrayView<float> w, int row, int k, int rowLength) => WeightQuad.OneByOne(this, w, row, k, rowLength);
}

/// <summary>
/// The 16-bit types read four weights in one 8-byte load: decode is bound by reading the weights, and a warp of
/// 2-byte loads moves too few bytes per request to keep a GPU's memory busy.
/// </summary>
internal static class SixteenBitWeights
{
    public static ulong FourBits(ArrayView<ushort> w, int row, int k, int rowLength) =>
        w.Cast<ulong>()[((long)row * rowLength + k) / 4];
}

/// <summary>IEEE half precision, kept as its 16 raw bits.</summary>
internal readonly struct F16Weights : IWeightFormat<ushort>
{
    public float Weight(ArrayView<ushort> w, int row, int k, int rowLength) => Widen(w[(long)row * rowLength + k]);

    public WeightQuad Four(ArrayView<ushort> w, int row, int k, int rowLength)
    {
        ulong bits = SixteenBitWeights.FourBits(w, row, k, rowLength);
        return new(Widen((ushort)bits), Widen((ushort)(bits >> 16)), Widen((ushort)(bits >> 32)), Widen((ushort)(bits >> 48)));
    }

    private static float Widen(ushort bits) => Interop.IntAsFloat(bits);
}

/// <summary>bfloat16 is the upper half of a float32, so widening is a shift.</summary>
internal readonly struct BF16Weights : IWeightFormat<ushort>
{
    public float Weight(ArrayView<ushort> w, int row, int k, int rowLength) => Widen(w[(long)row * rowLength + k]);

    public WeightQuad Four(ArrayView<ushort> w, int row, int k, int rowLength)
    {
        ulong bits = SixteenBitWeights.FourBits(w, row, k, rowLength);
        return new(Widen((ushort)bits), Widen((ushort)(bits >> 16)), Widen((ushort)(bits >> 32)), Widen((ushort)(bits >> 48)));
    }

    private static float Widen(ushort bits) => Interop.IntAsFloat((uint)bits << 16);
}
