using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;
using Xunit;

namespace FtpCluster.Compute.Tests.Kernels;

/// <summary>
/// The activation rows the quantized GEMVs take: every quant, scale and sum as llama.cpp's rule gives it, one value at a
/// time (d = max|x| / 127, q = round(x / d) with halves away from zero), ties included.
/// </summary>
public sealed class QuantizedActivationsTests
{
    [Theory]
    [InlineData(Q8Block.Size)]
    [InlineData(SuperBlocks.Size)]
    public unsafe void Rows_hold_the_quants_scales_and_sums_of_the_one_value_at_a_time_rule(int blockSize)
    {
        const int m = 3, k = 2 * SuperBlocks.Size;
        var x = Values(m, k, blockSize);
        fixed (float* px = x)
        {
            var activations = new QuantizedActivations(px, m, k, blockSize);
            for (int r = 0; r < m; r++)
            {
                var row = activations.Row(r);
                for (int b = 0; b < k / blockSize; b++)
                {
                    var block = new ReadOnlySpan<float>(x, r * k + b * blockSize, blockSize);
                    float d = Q8Block.Scale(block, out float inverse);
                    float scale = blockSize == Q8Block.Size ? WeightConvert.FromF16(WeightConvert.ToF16(d)) : d;
                    Assert.Equal(scale, row.Scales[b]);
                    for (int i = 0; i < blockSize; i++)
                    {
                        int expected = (int)MathF.Round(block[i] * inverse, MidpointRounding.AwayFromZero);
                        Assert.True(expected == row.Quants[b * blockSize + i],
                            $"block size {blockSize}, row {r}, element {b * blockSize + i}: x = {block[i]}, expected q = {expected}, got {row.Quants[b * blockSize + i]}");
                    }
                }
                for (int g = 0; g < k / QuantizedActivations.SumGroup; g++)
                {
                    int sum = 0;
                    for (int i = 0; i < QuantizedActivations.SumGroup; i++)
                        sum += row.Quants[g * QuantizedActivations.SumGroup + i];
                    Assert.Equal(sum, row.Sums[g]);
                }
                for (int b = 0; b < k / 32; b++)
                    Assert.Equal(row.Sums[2 * b] + row.Sums[2 * b + 1], row.Sum32(b));
            }
        }
    }

    /// <summary>
    /// Row 0 random; row 1 with 127 as each block's largest value, so d = 1 and the halves (±0.5, ±2.5, ...) are exact
    /// ties; row 2 all zero (d = 0).
    /// </summary>
    private static float[] Values(int m, int k, int blockSize)
    {
        var rng = new Random(7);
        var x = new float[m * k];
        for (int i = 0; i < k; i++)
            x[i] = (float)(rng.NextDouble() * 6 - 3);
        for (int i = 0; i < k; i++)
            x[k + i] = i % blockSize == 0 ? 127 : (i % 2 == 0 ? 1 : -1) * (i % 40 + 0.5f);
        return x;
    }
}
