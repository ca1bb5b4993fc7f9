using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Batches;
using FtpCluster.Grains.Files;
using FtpCluster.Grains.Jobs;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Cluster.Tests;

/// <summary>Three silos and one deployment of aidreams260K, made by the first test that needs it.</summary>
public sealed class BatchCluster : ThreeSiloCluster
{
    private Task<ServedDeployment>? _aidreams;

    /// <summary>The deployment and the name its requests give as their model.</summary>
    public Task<ServedDeployment> Aidreams() => _aidreams ??= Deploy();

    private async Task<ServedDeployment> Deploy()
    {
        string deployment = $"batches-{Guid.NewGuid():N}";
        await Client.GetGrain<ICoordinatorGrain>(deployment).Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 2));
        return (await Client.GetGrain<IDeploymentListGrain>(0).Served()).Single(d => d.DeploymentId == deployment);
    }
}

/// <summary>Stored files in pieces, and OpenAI batches over them run as jobs.</summary>
public sealed class BatchGrainTests(BatchCluster cluster) : IClassFixture<BatchCluster>
{
    private IFileGrain File(string id) => cluster.Client.GetGrain<IFileGrain>(id);

    private IFileListGrain Files => cluster.Client.GetGrain<IFileListGrain>(0);

    private static IBatchGrain NewBatch(IClusterClient client) => client.GetGrain<IBatchGrain>($"batch_{Guid.NewGuid():N}");

    /// <summary>Uploads as the HTTP endpoint does, a piece at a time; small pieces, so lines span them.</summary>
    private async Task<StoredFile> Upload(string filename, string content, string purpose = FileLimits.BatchPurpose, int pieceBytes = 50)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(content);
        string id = FileLimits.NewFileId();
        byte[][] pieces = bytes.Chunk(pieceBytes).ToArray();
        for (int n = 0; n < pieces.Length; n++) await cluster.Client.GetGrain<IFileChunkGrain>($"{id}/{n}").Write(pieces[n]);
        return await File(id).Commit(filename, purpose, bytes.Length, pieces.Length, content.Count(c => c == '\n'));
    }

    private async Task<byte[]> Content(StoredFile file)
    {
        await using var stream = new StoredFileStream(cluster.Client, file);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    private async Task<JsonElement[]> JsonLines(string? fileId)
    {
        Assert.NotNull(fileId);
        var file = await File(fileId).Info();
        Assert.NotNull(file);
        Assert.Equal(FileLimits.BatchOutputPurpose, file.Purpose);
        string[] lines = Encoding.UTF8.GetString(await Content(file)).Split('\n');
        Assert.Equal("", lines[^1]);
        Assert.Equal(file.Lines, lines.Length - 1);
        return [.. lines[..^1].Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    private static async Task<BatchInfo> WaitFinal(IBatchGrain batch)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            var info = await batch.Info();
            Assert.NotNull(info);
            if (BatchStatus.IsFinal(info.Status)) return info;
            Assert.True(DateTime.UtcNow < deadline, $"batch {info.Id} still {info.Status} after 2 minutes: {info.Completed + info.Failed}/{info.Total}");
            await Task.Delay(50);
        }
    }

    private static string Line(string customId, string model, int maxTokens, int seed = 0) =>
        JsonSerializer.Serialize(new
        {
            custom_id = customId, method = "POST", url = "/v1/completions",
            body = new { model, prompt = new[] { 1, 259 + seed % 7, 300 + seed % 11 }, max_tokens = maxTokens, temperature = 0.8, seed },
        });

    private static string ChatLine(string customId, string model) =>
        JsonSerializer.Serialize(new
        {
            custom_id = customId, method = "POST", url = "/v1/chat/completions",
            body = new { model, messages = new[] { new { role = "user", content = "Hello" } }, max_tokens = 4 },
        });

    [Fact]
    public async Task Files_are_uploaded_in_pieces_listed_newest_first_in_pages_and_deleted_with_their_pieces()
    {
        string purpose = $"test-{Guid.NewGuid():N}";
        var uploaded = new List<StoredFile>();
        for (int i = 0; i < 5; i++) uploaded.Add(await Upload($"f{i}.jsonl", $"{{\"n\": {i}}}\nsecond line of {i}\n", purpose, pieceBytes: 7));
        var first = uploaded[0];
        Assert.Equal(first, await File(first.Id).Info());
        Assert.Equal((2, purpose), (first.Lines, first.Purpose));
        Assert.Equal("{\"n\": 0}\nsecond line of 0\n", Encoding.UTF8.GetString(await Content(first)));
        await Assert.ThrowsAsync<InvalidOperationException>(() => File(first.Id).Commit("again.jsonl", purpose, first.Bytes, first.Chunks, 2));

        // Pages of two, newest first, then oldest first; `after` goes on past a file.
        var page = await Files.List(after: null, limit: 2, purpose, ascending: false);
        Assert.Equal(["f4.jsonl", "f3.jsonl"], page.Files.Select(f => f.Filename));
        Assert.True(page.HasMore);
        page = await Files.List(page.Files[^1].Id, 2, purpose, ascending: false);
        Assert.Equal(["f2.jsonl", "f1.jsonl"], page.Files.Select(f => f.Filename));
        page = await Files.List(page.Files[^1].Id, 2, purpose, ascending: false);
        Assert.Equal(["f0.jsonl"], page.Files.Select(f => f.Filename));
        Assert.False(page.HasMore);
        page = await Files.List(null, 10, purpose, ascending: true);
        Assert.Equal(uploaded.Select(f => f.Id), page.Files.Select(f => f.Id));
        Assert.False(page.HasMore);
        await Assert.ThrowsAsync<ArgumentException>(() => Files.List("file-none", 2, purpose, ascending: false));

        // Deleted: gone from the list, its pieces empty, its id not made again.
        Assert.True(await File(uploaded[2].Id).Delete());
        Assert.False(await File(uploaded[2].Id).Delete());
        Assert.Null(await File(uploaded[2].Id).Info());
        Assert.Equal(["f4.jsonl", "f3.jsonl", "f1.jsonl", "f0.jsonl"], (await Files.List(null, 10, purpose, false)).Files.Select(f => f.Filename));
        for (int n = 0; n < uploaded[2].Chunks; n++)
            Assert.Empty(await cluster.Client.GetGrain<IFileChunkGrain>($"{uploaded[2].Id}/{n}").Read());
        await Assert.ThrowsAsync<InvalidOperationException>(() => File(uploaded[2].Id).Commit("back.jsonl", purpose, 0, 0, 0));

        // A piece over the limit is refused; the writer fills whole pieces and a line may span two.
        await Assert.ThrowsAsync<ArgumentException>(() => cluster.Client.GetGrain<IFileChunkGrain>($"{FileLimits.NewFileId()}/0").Write(new byte[FileLimits.ChunkBytes + 1]));
        byte[] big = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 600_000).Select(i => $"line {i}\n")));
        var writer = new StoredFileWriter(cluster.Client, FileLimits.NewFileId());
        await writer.Write(big.AsMemory(0, 1000));
        await writer.Write(big.AsMemory(1000));
        var written = await writer.Commit("big.txt", purpose);
        Assert.Equal((big.Length, (big.Length + FileLimits.ChunkBytes - 1) / FileLimits.ChunkBytes, 600_000), (written.Bytes, written.Chunks, written.Lines));
        Assert.Equal(big, await Content(written));
        // A file whose pieces were cleared under it does not read as a shorter file.
        await cluster.Client.GetGrain<IFileChunkGrain>($"{written.Id}/1").Clear();
        await Assert.ThrowsAsync<StoredFileChangedException>(() => Content(written));
    }

    [SharedModelsFact]
    public async Task A_batch_runs_its_good_lines_and_writes_the_bad_ones_with_their_line_numbers_to_its_error_file()
    {
        var deployment = await cluster.Aidreams();
        string model = deployment.Name;
        var input = await Upload("requests.jsonl", string.Join('\n',
            Line("a", model, 6, seed: 1),
            Line("b", model, 6, seed: 2),
            "{\"custom_id\": \"broken\", ",
            Line("a", model, 6, seed: 3),
            ChatLine("chat", model),
            "",
            Line("c", model, 6, seed: 4)) + "\n");
        var batch = NewBatch(cluster.Client);
        var spec = new BatchSpec(input.Id, "/v1/completions", "24h", new Dictionary<string, string> { ["run"] = "test" });
        var created = await batch.Create(spec);
        Assert.Equal(BatchStatus.Validating, created.Status);
        Assert.Equal(created.CreatedAt + TimeSpan.FromHours(24), created.ExpiresAt);
        // The same spec again (its metadata an equal copy) answers as the batch stands; another spec is refused.
        Assert.Equal(created.CreatedAt, (await batch.Create(spec with { Metadata = new() { ["run"] = "test" } })).CreatedAt);
        await Assert.ThrowsAsync<InvalidOperationException>(() => batch.Create(spec with { Metadata = null }));

        var info = await WaitFinal(batch);
        Assert.Equal(BatchStatus.Completed, info.Status);
        Assert.Equal((6, 3, 3), (info.Total, info.Completed, info.Failed));
        Assert.Equal(deployment.DeploymentId, info.DeploymentId);
        Assert.NotNull(info.InProgressAt);
        Assert.NotNull(info.FinalizingAt);
        Assert.NotNull(info.CompletedAt);
        Assert.Empty(info.Errors);

        // The batch is the job that ran it, listed with the jobs.
        var job = cluster.Client.GetGrain<IJobGrain>(info.Id);
        Assert.Equal((JobStatus.Completed, 3), ((await job.Info()).Status, (await job.Info()).Lines));
        Assert.Contains(info.Id, await cluster.Client.GetGrain<IJobListGrain>(0).Ids());

        var results = (await JobLines.AllResults(job)).ToDictionary(r => r.Key);
        var output = await JsonLines(info.OutputFileId);
        Assert.Equal(["a", "b", "c"], output.Select(l => l.GetProperty("custom_id").GetString()).Order());
        foreach (var line in output)
        {
            var result = results[line.GetProperty("custom_id").GetString()!];
            Assert.Equal(200, line.GetProperty("response").GetProperty("status_code").GetInt32());
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(result.Body!), JsonNode.Parse(line.GetProperty("response").GetProperty("body").GetRawText())));
        }
        Assert.Equal($"{info.Id}_output.jsonl", (await File(info.OutputFileId!).Info())!.Filename);

        var errors = await JsonLines(info.ErrorFileId);
        Assert.Equal(
            [(3, null, "invalid_json_line"), (4, null, "duplicate_custom_id"), (5, "chat", "invalid_value")],
            errors.Select(e => (e.GetProperty("error").GetProperty("line").GetInt32(), e.GetProperty("custom_id").GetString(),
                e.GetProperty("error").GetProperty("code").GetString())));
        Assert.Contains("requests.jsonl line 5: 'url' is /v1/chat/completions, but the batch's endpoint is /v1/completions",
            errors[2].GetProperty("error").GetProperty("message").GetString());
        Assert.Equal($"{info.Id}_error.jsonl", (await File(info.ErrorFileId!).Info())!.Filename);
    }

    [SharedModelsFact]
    public async Task A_batch_is_refused_for_a_missing_file_a_file_of_another_purpose_an_unknown_endpoint_or_window()
    {
        var deployment = await cluster.Aidreams();
        var input = await Upload("one.jsonl", Line("x", deployment.Name, 2) + "\n");
        var output = await Upload("out.jsonl", "{}\n", FileLimits.BatchOutputPurpose);
        var batch = NewBatch(cluster.Client);
        var good = new BatchSpec(input.Id, "/v1/completions", "24h", null);

        async Task Refused(BatchSpec spec, string field) =>
            Assert.Contains(field, (await Assert.ThrowsAsync<ArgumentException>(() => batch.Create(spec))).Message);
        await Refused(good with { InputFileId = "file-missing" }, "'input_file_id'");
        await Refused(good with { InputFileId = output.Id }, "purpose 'batch_output'");
        await Refused(good with { Endpoint = "/v1/embeddings" }, "'endpoint'");
        await Refused(good with { CompletionWindow = "48h" }, "'completion_window'");
        Assert.Null(await batch.Info());
        await Assert.ThrowsAsync<KeyNotFoundException>(() => batch.Cancel());

        // The batch that is made at last runs, and one that has ended has nothing to cancel.
        await batch.Create(good);
        Assert.Equal(BatchStatus.Completed, (await WaitFinal(batch)).Status);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => batch.Cancel());
        Assert.Contains("is completed", refused.Message);
        Assert.Contains("nothing to cancel", refused.Message);
    }

    [SharedModelsFact]
    public async Task A_batch_whose_model_no_deployment_serves_fails_naming_the_model_and_its_line()
    {
        var deployment = await cluster.Aidreams();
        var input = await Upload("unknown.jsonl", "not json\n" + Line("x", "no-such-model", 4) + "\n" + Line("y", deployment.Name, 4) + "\n");
        var batch = NewBatch(cluster.Client);
        await batch.Create(new BatchSpec(input.Id, "/v1/completions", "24h", null));

        var info = await WaitFinal(batch);
        Assert.Equal(BatchStatus.Failed, info.Status);
        Assert.NotNull(info.FailedAt);
        var error = Assert.Single(info.Errors);
        Assert.Equal(("model_not_found", "body.model", 2), (error.Code, error.Param, error.Line));
        Assert.Contains("'no-such-model'", error.Message);
        Assert.Contains(deployment.Name, error.Message);
        Assert.Equal((0, 0, 0), (info.Total, info.Completed, info.Failed));
        Assert.Null(info.OutputFileId);
        Assert.Null(info.ErrorFileId);
        Assert.Contains(info.Id, await cluster.Client.GetGrain<IJobListGrain>(0).Ids());
    }

    [Fact]
    public async Task A_batch_without_one_valid_request_fails_listing_its_lines_errors()
    {
        var input = await Upload("bad.jsonl", "not json\n\n{\"custom_id\": 7}\n");
        var batch = NewBatch(cluster.Client);
        await batch.Create(new BatchSpec(input.Id, "/v1/chat/completions", "24h", null));
        var info = await WaitFinal(batch);
        Assert.Equal(BatchStatus.Failed, info.Status);
        Assert.Equal([("invalid_json_line", 1), ("invalid_type", 3)], info.Errors.Select(e => (e.Code, e.Line ?? 0)));
        Assert.Contains("bad.jsonl line 3: 'custom_id' must be a string", info.Errors[1].Message);

        var blank = await Upload("blank.jsonl", "\n  \n");
        batch = NewBatch(cluster.Client);
        await batch.Create(new BatchSpec(blank.Id, "/v1/chat/completions", "24h", null));
        info = await WaitFinal(batch);
        Assert.Equal(BatchStatus.Failed, info.Status);
        Assert.Equal(("empty_file", "input_file_id"), (Assert.Single(info.Errors).Code, info.Errors[0].Param));
    }

    [SharedModelsFact]
    public async Task A_cancelled_batch_ends_cancelled_with_the_output_of_the_lines_that_finished()
    {
        var deployment = await cluster.Aidreams();
        // A few short lines finish first; the long ones (the model's whole context of 128 tokens) keep the batch running.
        const int ShortLines = 4, LongLines = 600;
        var lines = Enumerable.Range(0, ShortLines).Select(i => Line($"short-{i}", deployment.Name, 2, seed: i))
            .Concat(Enumerable.Range(0, LongLines).Select(i => Line($"long-{i}", deployment.Name, 125, seed: i)));
        var input = await Upload("long.jsonl", string.Join('\n', lines), pieceBytes: FileLimits.ChunkBytes);
        var batch = NewBatch(cluster.Client);
        await batch.Create(new BatchSpec(input.Id, "/v1/completions", "24h", null));

        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        BatchInfo? info;
        while ((info = await batch.Info())!.Completed == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"no line finished within a minute: {info.Status}");
            await Task.Delay(20);
        }
        Assert.Equal(BatchStatus.InProgress, info.Status);
        var cancelling = await batch.Cancel();
        Assert.Equal(BatchStatus.Cancelling, cancelling.Status);
        Assert.NotNull(cancelling.CancellingAt);

        info = await WaitFinal(batch);
        Assert.Equal(BatchStatus.Cancelled, info.Status);
        Assert.NotNull(info.CancelledAt);
        Assert.Equal(ShortLines + LongLines, info.Total);
        Assert.InRange(info.Completed, 1, ShortLines + LongLines - 1);
        Assert.Equal(JobStatus.Cancelled, (await cluster.Client.GetGrain<IJobGrain>(info.Id).Info()).Status);
        var output = await JsonLines(info.OutputFileId);
        Assert.Equal(info.Completed, output.Length);
        Assert.Subset((await JobLines.AllResults(cluster.Client.GetGrain<IJobGrain>(info.Id))).Select(r => r.Key).ToHashSet(),
            output.Select(l => l.GetProperty("custom_id").GetString()!).ToHashSet());
        await Assert.ThrowsAsync<InvalidOperationException>(() => batch.Cancel());
    }
}
