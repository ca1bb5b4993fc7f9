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

    /// <summary>
    /// Against a float64 reference over head sizes that take every path of the kernel (scalar, 16-wide,
    /// 64-wide and their tails), key counts that are not multiples of four, grouped-query heads, keys
    /// with gaps in their positions (an FTP block's cache), and the per-key attention totals.
    /// </summary>
    [Theory]
    [InlineData(8, 1, 1)]
    [InlineData(16, 5, 3)]
    [InlineData(24, 37, 2)]
    [InlineData(64, 37, 20)]
    [InlineData(80, 9, 1)]
    [InlineData(128, 70, 33)]
    public void Attention_matches_a_float64_reference(int headDim, int keys, int queries)
    {
        const int heads = 6, kvHeads = 2;
        var random = new Random(headDim * 1000 + keys);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var keyPositions = Enumerable.Range(0, keys).Select(j => 3 * j + j % 2).ToArray();
        var queryPositions = Enumerable.Range(0, queries).Select(i => keyPositions[^1] - 3 * (queries - 1 - i)).ToArray();
        float[] q = Random(queries * heads * headDim), k = Random(keys * kvHeads * headDim), v = Random(keys * kvHeads * headDim);

        using var cpu = new CpuDevice(2);
        var output = new float[q.Length];
        var totals = new float[keys];
        cpu.Attention(q, queryPositions, k, v, keyPositions, heads, kvHeads, headDim, output, totals);

        var expectedTotals = new double[keys];
        for (int i = 0; i < queries; i++)
            for (int h = 0; h < heads; h++)
            {
                int kvh = h / (heads / kvHeads);
                var visible = Enumerable.Range(0, keys).Where(j => keyPositions[j] <= queryPositions[i]).ToArray();
                var scores = visible.Select(j => Enumerable.Range(0, headDim)
                    .Sum(d => (double)q[(i * heads + h) * headDim + d] * k[(j * kvHeads + kvh) * headDim + d]) / Math.Sqrt(headDim)).ToArray();
                double max = scores.Max();
                var weights = scores.Select(s => Math.Exp(s - max)).ToArray();
                double sum = weights.Sum();
                for (int d = 0; d < headDim; d++)
                {
                    double expected = visible.Select((j, n) => weights[n] / sum * v[(j * kvHeads + kvh) * headDim + d]).Sum();
                    Assert.Equal(expected, output[(i * heads + h) * headDim + d], tolerance: 1e-5);
                }
                for (int n = 0; n < visible.Length; n++) expectedTotals[visible[n]] += weights[n] / sum;
            }
        for (int j = 0; j < keys; j++) Assert.Equal(expectedTotals[j], totals[j], tolerance: 1e-4);
    }
}
