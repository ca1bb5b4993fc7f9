using System.Globalization;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Tests;
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

    [SharedModelsFact]
    public async Task A_silo_told_to_serve_a_model_deploys_it_and_answers_for_it_over_HTTP()
    {
        int httpPort = SiloProcess.FreeLoopbackPorts(1)[0];
        string model = SharedModels.PathTo("aidreams260K", "aidreams260K.bin");
        using var silo = SiloProcess.Start(["--node-name", "server", "--threads", "1", "--cluster-id", $"test-{Guid.NewGuid():N}",
            "--http-port", httpPort.ToString(CultureInfo.InvariantCulture), "--serve", $"{model}=dreams", .. Ports()]);
        await silo.WaitReadyAsync();
        Assert.Contains("HTTP API on http://127.0.0.1:", silo.Output + string.Join("\n", silo.ErrorLines), StringComparison.Ordinal);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}/") };
        // Ready once the model is deployed; the deployment follows the silo's joining.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (await http.GetAsync("health/ready") is { IsSuccessStatusCode: false } notReady)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"not ready 60 s after joining: {await notReady.Content.ReadAsStringAsync()}");
            await Task.Delay(100);
        }
        using var models = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("v1/models"));
        Assert.Equal("dreams", models.RootElement.GetProperty("data")[0].GetProperty("id").GetString());
        using var answer = await http.PostAsync("v1/completions", new StringContent(
            """{"model": "dreams", "prompt": "I dreamed of", "max_tokens": 5}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.True(answer.IsSuccessStatusCode, await answer.Content.ReadAsStringAsync());
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
