using FtpCluster.Compute.Devices;

namespace FtpCluster.Compute.Tests.Devices;

public sealed class CpuDeviceAttentionTests
{
    /// <summary>
    /// Scores of 1000 and 999 (head dim 1, so no scaling): softmax weights are those of scores 1 and 0,
    /// so the output is the first value's weight, 1 / (1 + e⁻¹). Unshifted exponentials overflow to NaN.
    /// </summary>
    [Fact]
    public void Attention_with_large_scores_stays_finite()
    {
        using var cpu = new CpuDevice(1);
        var output = new float[1];
        var totals = new float[2];
        cpu.Attention([1000f], [1], [1f, 0.999f], [1f, 0f], [0, 1], 1, 1, 1, output, totals);
        Assert.Equal(1 / (1 + MathF.Exp(-1)), output[0], 4);
        Assert.Equal(1f, totals[0] + totals[1], 5);
    }
}
