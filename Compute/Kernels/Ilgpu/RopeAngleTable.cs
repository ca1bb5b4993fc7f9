using FtpCluster.Compute.Devices;
using ILGPU;
using ILGPU.Runtime;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>
/// cos and sin of every (position, pair) angle of one <see cref="RopeTable"/>, on the device, for
/// positions [0, Positions). Computed on the host exactly as the CPU backend does (float angle, then
/// MathF.SinCos) and extended by doubling when a larger position arrives.
/// </summary>
internal sealed class RopeAngleTable(Accelerator accelerator, RopeTable table) : IDisposable
{
    private MemoryBuffer1D<float, Stride1D.Dense>? _cos, _sin;

    public int Positions { get; private set; }

    public ArrayView<float> Cos => _cos!.View;
    public ArrayView<float> Sin => _sin!.View;

    public void Cover(int maxPosition)
    {
        if (maxPosition < Positions)
            return;
        int positions = Math.Max(maxPosition + 1, Math.Max(2 * Positions, 64));
        int half = table.HeadDim / 2;
        var inverseFrequencies = table.InverseFrequencies;
        var cos = new float[(long)positions * half];
        var sin = new float[cos.Length];
        for (int p = 0; p < positions; p++)
        {
            for (int i = 0; i < half; i++)
            {
                float angle = p * inverseFrequencies[i];
                (sin[p * half + i], cos[p * half + i]) = MathF.SinCos(angle);
            }
        }
        _cos?.Dispose();
        _sin?.Dispose();
        _cos = accelerator.Allocate1D(cos);
        _sin = accelerator.Allocate1D(sin);
        Positions = positions;
    }

    public void Dispose()
    {
        _cos?.Dispose();
        _sin?.Dispose();
    }
}
