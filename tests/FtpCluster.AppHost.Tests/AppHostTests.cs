using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using FtpCluster.Cluster.Tests;
using FtpCluster.Compute.Tests;

namespace FtpCluster.AppHost.Tests;

/// <summary>
/// <c>dotnet run --project AppHost</c> as a developer runs it, started by Aspire.Hosting.Testing: three silo processes
/// that form one cluster, silo a deploying the model over all three and serving the HTTP API, each resource healthy
/// only once it has joined and the deployment is loaded.
/// </summary>
public sealed class AppHostTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(4);

    [SharedModelsFact]
    public async Task The_app_host_starts_three_healthy_silos_in_one_cluster_that_answers_a_chat_completion()
    {
        int[] ports = FreePortRun(3 + 3 + 3);
        var appHost = await DistributedApplicationTestingBuilder.CreateAsync<Projects.FtpCluster_AppHost>(
        [
            "--Silos", "3",
            "--Model", SharedModels.PathTo("aidreams260K", "aidreams260K.bin"),
            "--FirstSiloPort", $"{ports[0]}", "--FirstGatewayPort", $"{ports[3]}", "--HttpPort", $"{ports[6]}",
        ]);
        // The dashboard's OTLP endpoint, which the app host gives every silo, is the test's receiver here.
        using var receiver = new OtlpTraceReceiver();
        foreach (string silo in Silos)
            appHost.CreateResourceBuilder<ProjectResource>(silo)
                .WithEnvironment("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.Endpoint.ToString())
                .WithEnvironment("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
                .WithEnvironment("OTEL_BSP_SCHEDULE_DELAY", "200");
        await using var app = await appHost.BuildAsync();
        using var timeout = new CancellationTokenSource(StartTimeout);
        await app.StartAsync(timeout.Token);
        foreach (string silo in Silos)
            await app.ResourceNotifications.WaitForResourceHealthyAsync(silo, timeout.Token);

        using var http = app.CreateHttpClient("silo-a", "http");
        // One cluster of three: the model's stages are on a, b and c.
        using (var models = JsonDocument.Parse(await http.GetStringAsync("/v1/models", timeout.Token)))
        {
            var stages = models.RootElement.GetProperty("data")[0].GetProperty("ftp").GetProperty("stages");
            Assert.Equal(["a", "b", "c"], stages.EnumerateArray().Select(s => s.GetProperty("silo").GetString()).Order());
        }

        // Greedy: a sampled answer may draw the end token first (one CI run did) and have no tokens to count.
        using var answer = await http.PostAsync("/v1/chat/completions", new StringContent(
            """{"model": "aidreams260K", "messages": [{"role": "user", "content": "I dreamed of"}], "max_tokens": 12, "temperature": 0}""",
            Encoding.UTF8, "application/json"), timeout.Token);
        string body = await answer.Content.ReadAsStringAsync(timeout.Token);
        Assert.True(answer.IsSuccessStatusCode, body);
        using var completion = JsonDocument.Parse(body);
        Assert.True(completion.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);

        // The FTP metrics of that request, summed over the silos (its stages and coordinator may be on any of them).
        var scraped = new List<PrometheusText>();
        foreach (string silo in Silos)
        {
            using var client = app.CreateHttpClient(silo, "http");
            scraped.Add(PrometheusText.Parse(await client.GetStringAsync("/metrics", timeout.Token)));
        }
        var metrics = PrometheusText.Join(scraped);
        foreach (string name in new[] { "ftpcluster_block_tokens_computed_total", "ftpcluster_wire_bytes_total",
            "ftpcluster_stage_compute_duration_seconds_count", "gen_ai_server_time_to_first_token_seconds_count" })
            Assert.True(metrics.Sum(name) > 0, $"{name} is zero or missing; the silos report: {string.Join(", ", metrics.Names.Order())}");

        // And its trace: the HTTP server span on silo a and stage spans on other silos, in one trace (the app host names
        // each silo's service after its resource).
        await receiver.WaitForAsync(spans => spans.GroupBy(s => s.TraceId).FirstOrDefault(trace =>
                trace.Any(s => s.Kind == ReceivedSpan.ServerKind && s.Service == "silo-a" && s.Name.Contains("chat/completions", StringComparison.Ordinal))
                && trace.Where(s => s.Name == "ftpcluster.stage.forward").Select(s => s.Service).Distinct().Count() >= 2)?.ToArray(),
            TimeSpan.FromSeconds(60), spans => string.Join(Environment.NewLine, spans.Take(60)));
    }

    /// <summary>
    /// <c>--Device cuda</c> gives silo i the GPU numbered i (each takes its own GPU's free memory as its budget), and one
    /// numbered GPU for several silos is refused before anything starts.
    /// </summary>
    [Fact]
    public async Task Silos_asked_for_cuda_are_given_a_gpu_each_and_one_numbered_gpu_for_several_is_refused()
    {
        await using var appHost = await DistributedApplicationTestingBuilder.CreateAsync<Projects.FtpCluster_AppHost>(["--Silos", "2", "--Device", "cuda"]);
        foreach (var (silo, gpu) in new[] { ("silo-a", "cuda:0"), ("silo-b", "cuda:1") })
        {
            var resource = appHost.Resources.OfType<ProjectResource>().Single(r => r.Name == silo);
#pragma warning disable CS0618 // Its replacement needs a running app's execution context; the arguments are all this test reads.
            string[] args = await resource.GetArgumentValuesAsync();
#pragma warning restore CS0618
            Assert.Equal(gpu, args[Array.IndexOf(args, "--device") + 1]);
        }

        var error = await Assert.ThrowsAnyAsync<Exception>(() =>
            DistributedApplicationTestingBuilder.CreateAsync<Projects.FtpCluster_AppHost>(["--Silos", "2", "--Device", "cuda:0"]));
        Assert.Contains("Device cuda:0 for 2 silos: each would take its whole free memory as its budget", error.ToString());
    }

    private static readonly string[] Silos = ["silo-a", "silo-b", "silo-c"];

    /// <summary><paramref name="count"/> consecutive loopback ports that are free now (the app host numbers silos' ports from a first one).</summary>
    private static int[] FreePortRun(int count)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int first = Random.Shared.Next(20_000, 60_000 - count);
            var taken = new List<TcpListener>();
            try
            {
                for (int port = first; port < first + count; port++)
                {
                    var listener = new TcpListener(IPAddress.Loopback, port);
                    listener.Start();
                    taken.Add(listener);
                }
                return [.. Enumerable.Range(first, count)];
            }
            catch (SocketException)
            {
                // One of them is in use: try another run.
            }
            finally
            {
                foreach (var listener in taken) listener.Stop();
            }
        }
        throw new InvalidOperationException($"no run of {count} free loopback ports found");
    }
}
