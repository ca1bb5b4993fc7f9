using System.Text.Json;
using FtpCluster.Compute.Benchmarks;
using Xunit;

namespace FtpCluster.Compute.Tests.Kernels;

public sealed class KernelBenchmarkTests
{
    [Fact]
    public void Quick_run_fills_every_figure_and_serialises_to_snake_case_json()
    {
        var result = KernelBenchmark.Run(new KernelBenchmarkOptions(Threads: 2, Quick: true));

        Assert.True(result.Quick);
        Assert.Equal(2, result.Threads);
        Assert.False(string.IsNullOrEmpty(result.Simd));
        Assert.All(new[]
            {
                result.FmaPeakGflops, result.FmaPeakBestGflops, result.ReadBandwidthGBPerSecond, result.ReadBandwidthBestGBPerSecond,
                result.CopyBandwidthGBPerSecond, result.PoolDispatchMicroseconds,
            },
            v => Assert.True(double.IsFinite(v) && v > 0, $"figure {v}"));
        Assert.NotEmpty(result.Gemm);
        Assert.NotEmpty(result.Gemv);
        Assert.All(result.Gemm, g => Assert.True(g.Milliseconds > 0 && g.Gflops > 0 && g.PercentOfPeak > 0 && g.BestGflops >= g.Gflops && g.PercentOfPeakBest > 0, g.ToString()));
        Assert.All(result.Gemv, g => Assert.True(g.Milliseconds > 0 && g.WeightGBPerSecond > 0 && g.PercentOfReadBandwidth > 0 && g.BestWeightGBPerSecond >= g.WeightGBPerSecond && g.PercentOfReadBandwidthBest > 0
            && g.SameBufferReadGBPerSecond > 0 && g.PercentOfSameBufferRead > 0, g.ToString()));
        Assert.Contains(result.Gemm, g => g.Storage == "q4_k");
        Assert.Contains(result.Gemv, g => g.Storage == "f16");
        Assert.Contains(result.Gemv, g => g.Storage == "q8_0");
        Assert.Contains(result.Gemv, g => g.Storage == "q4_k");
        Assert.Contains(result.Gemv, g => g.FromMemory);

        string json = JsonSerializer.Serialize(result, KernelBenchmarkJsonContext.Default.KernelBenchmarkResult);
        using var doc = JsonDocument.Parse(json);
        Assert.True(doc.RootElement.GetProperty("fma_peak_gflops").GetDouble() > 0);
        Assert.Equal(result.Gemm.Count, doc.RootElement.GetProperty("gemm").GetArrayLength());
        Assert.True(doc.RootElement.GetProperty("gemv")[0].GetProperty("weight_gb_per_second").GetDouble() > 0);
        var back = JsonSerializer.Deserialize(json, KernelBenchmarkJsonContext.Default.KernelBenchmarkResult);
        Assert.NotNull(back);
        Assert.Equal(result.FmaPeakGflops, back.FmaPeakGflops);
    }
}
