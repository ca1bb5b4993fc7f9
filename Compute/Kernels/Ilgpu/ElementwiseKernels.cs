using ILGPU;
using ILGPU.Algorithms;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>One thread per element; launched auto-grouped.</summary>
internal static class ElementwiseKernels
{
    /// <summary>gate = silu(gate) · up, silu(g) = g · sigmoid(g).</summary>
    public static void SwiGlu(Index1D i, ArrayView<float> gate, ArrayView<float> up)
    {
        float g = gate[i];
        float sigmoid = 1f / (1f + XMath.Exp(-g));
        gate[i] = g * sigmoid * up[i];
    }

    public static void Add(Index1D i, ArrayView<float> x, ArrayView<float> y) => x[i] += y[i];

    public static void AddBias(Index1D i, ArrayView<float> x, ArrayView<float> bias) => x[i] += bias[i % (int)bias.Length];
}
