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

    [Fact]
    public void Local_silos_on_cuda_take_a_gpu_each_and_its_free_memory_as_their_budget_and_may_not_share_one()
    {
        var silos = EmbeddedCluster.LocalSiloOptions(3, "devices");
        silos[0].Device = silos[1].Device = "cuda";
        EmbeddedCluster.PlaceOnDevices(silos);
        Assert.Equal("cuda:0 cuda:1 cpu", string.Join(' ', silos.Select(s => s.Device)));
        Assert.Equal("True True False", string.Join(' ', silos.Select(s => s.MemoryBudgetFromDevice)));
        // The silo process is told to measure its budget, not given the host's.
        Assert.DoesNotContain("--memory-budget-mb", silos[0].ToCommandLine());
        Assert.Contains("--memory-budget-mb", silos[2].ToCommandLine());

        silos = EmbeddedCluster.LocalSiloOptions(3, "shared");
        foreach (var silo in silos) silo.Device = "cuda:1";
        var error = Assert.Throws<ArgumentException>(() => EmbeddedCluster.PlaceOnDevices(silos));
        Assert.Equal("silos a, b, c are all on cuda:1, and each would take its whole free memory as its budget: give them cuda, "
            + "which puts each on a GPU of its own", error.Message);
    }

    /// <summary>
    /// Local silos asked for <c>cuda</c> (<c>cluster up</c>, embedded clusters) start on one GPU each, not all on the first,
    /// where each would take its whole free memory as its budget. Without two GPUs the silo past the last one found is
    /// refused at start, naming the CUDA problem.
    /// </summary>
    [Fact]
    public async Task Local_silos_asked_for_cuda_start_on_one_gpu_each()
    {
        int gpus = IlgpuDevice.ListDevices().Count(d => d.StartsWith("cuda", StringComparison.Ordinal));
        var silos = EmbeddedCluster.LocalSiloOptions(2, $"gpus-{Guid.NewGuid():N}");
        foreach (var silo in silos) silo.Device = "cuda";

        if (gpus >= 2)
        {
            using var cluster = await EmbeddedCluster.StartAsync(silos);
            Assert.Equal("cuda:0 cuda:1", string.Join(' ', cluster.Silos.Select(s => s.Options.Device)));
            return;
        }
        var error = await Assert.ThrowsAnyAsync<Exception>(() => EmbeddedCluster.StartAsync(silos));
        Assert.Equal("cuda:0 cuda:1", string.Join(' ', silos.Select(s => s.Device)));
        Assert.Contains(gpus == 0 ? "ILGPU found no CUDA device" : "there is no CUDA device 1: ILGPU found 1", error.Message);
    }
}
