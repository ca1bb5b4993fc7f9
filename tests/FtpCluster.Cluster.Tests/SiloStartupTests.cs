using System.Globalization;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Devices;
using FtpCluster.Grains.Hosting;

namespace FtpCluster.Cluster.Tests;

/// <summary>What a silo process does with a request it cannot serve: one clear line and a non-zero exit.</summary>
public sealed class SiloStartupTests
{
    private static string[] Ports()
    {
        int[] ports = SiloProcess.FreeLoopbackPorts(2);
        return ["--silo-port", ports[0].ToString(CultureInfo.InvariantCulture), "--gateway-port", ports[1].ToString(CultureInfo.InvariantCulture)];
    }

    [Fact]
    public async Task A_bad_option_exits_with_code_2_and_one_error_line()
    {
        using var silo = SiloProcess.Start(["--node-name", "bad", "--clustering", "zookeeper", .. Ports()]);

        Assert.Equal(2, await silo.WaitExitAsync());
        var line = Assert.Single(silo.ErrorLines);
        Assert.Equal("ftpcluster-silo: unknown clustering (--clustering) 'zookeeper' (expected localhost or redis)", line);
    }

    [Fact]
    public async Task Cuda_is_opened_at_start_and_refused_with_the_reason_where_there_is_no_gpu()
    {
        bool hasCuda = IlgpuDevice.ListDevices().Any(d => d.StartsWith("cuda", StringComparison.Ordinal));
        using var silo = SiloProcess.Start(["--node-name", "gpu", "--device", "cuda", .. Ports()]);

        if (hasCuda)
        {
            // On a GPU machine the same request must succeed: the silo joins with the GPU it found.
            var ready = await silo.WaitReadyAsync();
            Assert.Equal("gpu", ready.NodeName);
            Assert.Contains("uses device cuda: ilgpu cuda", silo.Output, StringComparison.Ordinal);
            return;
        }
        Assert.Equal(1, await silo.WaitExitAsync());
        var line = Assert.Single(silo.ErrorLines);
        Assert.StartsWith("ftpcluster-silo: node gpu failed to start: ILGPU found no CUDA device", line, StringComparison.Ordinal);
        Assert.DoesNotContain(SiloReadyLine.Prefix, silo.Output, StringComparison.Ordinal);
    }
}
