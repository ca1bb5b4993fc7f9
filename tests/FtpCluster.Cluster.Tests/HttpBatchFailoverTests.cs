using System.ClientModel;
using System.Text.Json;
using FtpCluster.Client.Cluster;
using FtpCluster.Grains.Pipeline;
using OpenAI;
using OpenAI.Files;

namespace FtpCluster.Cluster.Tests;

/// <summary>A batch outlives the silo whose HTTP API took it: its file, its job and its state are in Redis.</summary>
public sealed class HttpBatchFailoverTests
{
    [RedisServerAndSharedModelsFact]
    public async Task A_batch_survives_the_death_of_the_silo_that_accepted_it()
    {
        using var redis = await RedisServer.StartAsync();
        int[] ports = SiloProcess.FreeLoopbackPorts(2);
        var httpPorts = new Dictionary<string, int> { ["b"] = ports[0], ["c"] = ports[1] };
        using var silos = new RedisSilos(redis, options => options.HttpPort = httpPorts.GetValueOrDefault(options.NodeName) is > 0 and var port ? port : null,
            "a", "b", "c");
        await silos.WaitReadyAsync();
        await using var client = await silos.ConnectAsync(redis);
        await client.Grains.GetGrain<ICoordinatorGrain>($"http-{Guid.NewGuid():N}")
            .Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 1, ServedName: "aidreams"));

        string input = Path.GetTempFileName();
        try
        {
            await File.WriteAllLinesAsync(input, Enumerable.Range(0, 30).Select(i => JsonSerializer.Serialize(new
            {
                custom_id = $"line-{i}", method = "POST", url = "/v1/completions",
                body = new { model = "aidreams", prompt = $"Dream {i}", max_tokens = 60, temperature = 0 },
            })));
            // Accepted by b ...
            var accepting = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri($"http://127.0.0.1:{ports[0]}/v1") });
            OpenAIFile file = await accepting.GetOpenAIFileClient().UploadFileAsync(input, FileUploadPurpose.Batch);
            var operation = await accepting.GetBatchClient().CreateBatchAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(new
            {
                input_file_id = file.Id, endpoint = "/v1/completions", completion_window = "24h",
            })), waitUntilCompleted: false);
            silos.Kill("b");

            // ... and followed through c to its end.
            using var survivor = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ports[1]}/v1/") };
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
            JsonElement batch;
            while (true)
            {
                using var response = await survivor.GetAsync($"batches/{operation.BatchId}");
                string body = await response.Content.ReadAsStringAsync();
                // While the cluster declares b dead, calls that reach what b hosted fail; they are answered again after.
                if (response.IsSuccessStatusCode)
                {
                    batch = JsonDocument.Parse(body).RootElement;
                    string status = batch.GetProperty("status").GetString()!;
                    if (status is "completed" or "failed" or "cancelled" or "expired") break;
                }
                Assert.True(DateTime.UtcNow < deadline, $"batch {operation.BatchId} not done 3 minutes after b died: {body}{Environment.NewLine}{SiloErrors(silos)}");
                await Task.Delay(250);
            }
            Assert.True(batch.GetProperty("status").GetString() == "completed", $"batch {operation.BatchId} ended: {batch}");
            Assert.Equal(30, batch.GetProperty("request_counts").GetProperty("completed").GetInt32());
            string output = await survivor.GetStringAsync($"files/{batch.GetProperty("output_file_id").GetString()}/content");
            var ids = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("custom_id").GetString()).ToArray();
            Assert.Equal(Enumerable.Range(0, 30).Select(i => $"line-{i}").Order(), ids.Order());
        }
        finally
        {
            File.Delete(input);
        }
    }

    /// <summary>The last lines each silo logged (warnings and errors, and its own information lines): what a batch that stops moving leaves to go on.</summary>
    private static string SiloErrors(RedisSilos silos) => string.Join(Environment.NewLine, silos.NodeNames.Zip(silos.Processes,
        (node, silo) => $"silo {node}:{Environment.NewLine}{string.Join(Environment.NewLine, silo.Output.Split('\n').TakeLast(40))}"));
}
