using ILGPU;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>
/// How a kernel turns one stored weight element into float32. The matrix kernels are generic over a
/// struct implementing this, so ILGPU specializes (and inlines) one kernel per storage type.
/// </summary>
internal interface IWeightFormat<TStorage>
    where TStorage : unmanaged
{
    float ToFloat(TStorage stored);
}

internal readonly struct F32Weights : IWeightFormat<float>
{
    public float ToFloat(float stored) => stored;
}

/// <summary>IEEE half precision, kept as its 16 raw bits.</summary>
internal readonly struct F16Weights : IWeightFormat<ushort>
{
    public float ToFloat(ushort stored) => Interop.IntAsFloat(stored);
}

/// <summary>bfloat16 is the upper half of a float32, so widening is a shift.</summary>
internal readonly struct BF16Weights : IWeightFormat<ushort>
{
    public float ToFloat(ushort stored) => Interop.IntAsFloat((uint)stored << 16);
}
