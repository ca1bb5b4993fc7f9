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
}

internal readonly struct F32Weights : IWeightFormat<float>
{
    public float Weight(ArrayView<float> w, int row, int k, int rowLength) => w[(long)row * rowLength + k];
}

/// <summary>IEEE half precision, kept as its 16 raw bits.</summary>
internal readonly struct F16Weights : IWeightFormat<ushort>
{
    public float Weight(ArrayView<ushort> w, int row, int k, int rowLength) => Interop.IntAsFloat(w[(long)row * rowLength + k]);
}

/// <summary>bfloat16 is the upper half of a float32, so widening is a shift.</summary>
internal readonly struct BF16Weights : IWeightFormat<ushort>
{
    public float Weight(ArrayView<ushort> w, int row, int k, int rowLength) => Interop.IntAsFloat((uint)w[(long)row * rowLength + k] << 16);
}
