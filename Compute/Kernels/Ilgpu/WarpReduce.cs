using ILGPU;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>Butterfly reductions across one warp: every lane ends with the result.</summary>
internal static class WarpReduce
{
    public static float Sum(float value)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset /= 2)
            value += Warp.ShuffleXor(value, offset);
        return value;
    }

    public static float Max(float value)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset /= 2)
        {
            float other = Warp.ShuffleXor(value, offset);
            value = other > value ? other : value;
        }
        return value;
    }
}
