using ILGPU;
using ILGPU.Algorithms;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>One thread per element; launched auto-grouped.</summary>
internal static class ElementwiseKernels
{
    /// <summary>gate = silu(gate) · up.</summary>
    public static void SwiGlu(Index1D i, ArrayView<float> gate, ArrayView<float> up) => gate[i] = SwiGlu(gate[i], up[i]);

    /// <summary>silu(g) · u, silu(g) = g · sigmoid(g).</summary>
    public static float SwiGlu(float g, float u) => g * (1f / (1f + XMath.Exp(-g))) * u;

    public static void AddBias(Index1D i, ArrayView<float> x, ArrayView<float> bias) => x[i] += bias[i % (int)bias.Length];
}
