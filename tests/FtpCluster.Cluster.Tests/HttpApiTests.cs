using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Tests;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Pipeline;
using OpenAI;
using OpenAI.Batch;
using OpenAI.Chat;
using OpenAI.Files;

namespace FtpCluster.Cluster.Tests;

/// <summary>
/// Three silo processes, silo a serving the HTTP API on a free loopback port behind one API key, and the aidreams260K
/// model deployed over two stages under the served name <see cref="ModelName"/> (with the id every command derives
/// for it, so <c>ftpcluster run --cluster</c> shares the deployment).
/// </summary>
public sealed class HttpApiCluster : ThreeSiloCluster, IAsyncLifetime
{
    public const string ApiKey = "sk-ftpcluster-test-key";
    public const string ModelName = "aidreams";

    /// <summary>stories260K, served too: its context (512) is long enough to cut an answer off in the middle.</summary>
    public const string LongModelName = "stories";

    private readonly string _keyFile = Path.Combine(Path.GetTempPath(), $"ftpcluster-keys-{Guid.NewGuid():N}.txt");

    public int HttpPort { get; private set; }

    public string KeyFile => _keyFile;

    public string DeploymentId { get; } = DeploymentIds.For(JobLines.Aidreams, 2, "f32", storage: null);

    public string LongDeploymentId { get; } = DeploymentIds.For(Stories, 2, "f32", storage: null);

    private static string Stories => SharedModels.PathTo("stories260K", "stories260K.bin");

    public Uri BaseUrl => new($"http://127.0.0.1:{HttpPort}/v1/");

    public OpenAIClient OpenAI(string key = ApiKey) =>
        new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri($"http://127.0.0.1:{HttpPort}/v1") });

    /// <summary>A plain HTTP client; a response disposed before its end closes the connection (no draining to reuse it),
    /// as a client that goes away does.</summary>
    public HttpClient Http(string? key = ApiKey)
    {
        var handler = new SocketsHttpHandler { MaxResponseDrainSize = 0 };
        var http = new HttpClient(handler) { BaseAddress = BaseUrl, Timeout = TimeSpan.FromMinutes(2) };
        if (key is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    protected override void Configure(FtpClusterSiloOptions[] options)
    {
        File.WriteAllText(_keyFile, $"# test keys\n{ApiKey}\n");
        HttpPort = SiloProcess.FreeLoopbackPorts(1)[0];
        options[0].HttpPort = HttpPort;
        options[0].ApiKeyFile = _keyFile;
    }

    async Task IAsyncLifetime.InitializeAsync()
    {
        await InitializeAsync();
        if (SharedModels.Root is null) return;
        await Client.GetGrain<ICoordinatorGrain>(DeploymentId).Deploy(new DeploymentRequest(JobLines.Aidreams, Stages: 2, ServedName: ModelName));
        await Client.GetGrain<ICoordinatorGrain>(LongDeploymentId).Deploy(new DeploymentRequest(Stories, Stages: 2, ServedName: LongModelName,
            Tokenizer: SharedModels.PathTo("aidreams260K", "tok512.bin")));
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        await DisposeAsync();
        File.Delete(_keyFile);
    }
}

/// <summary>The HTTP API driven by the official OpenAI .NET SDK, unmodified, and by plain HTTP where the SDK has no call.</summary>
public sealed class HttpApiTests(HttpApiCluster cluster) : IClassFixture<HttpApiCluster>
{
    private static readonly ChatMessage[] Question = [new UserChatMessage("I dreamed of")];

    [SharedModelsFact]
    public async Task The_models_list_has_the_served_model_with_its_stages()
    {
        var models = (await cluster.OpenAI().GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Contains(models, m => m.Id == HttpApiCluster.ModelName && m.OwnedBy == "ftpcluster");

        using var http = cluster.Http();
        using var json = JsonDocument.Parse(await http.GetStringAsync("models"));
        var model = json.RootElement.GetProperty("data").EnumerateArray().Single(m => m.GetProperty("id").GetString() == HttpApiCluster.ModelName);
        Assert.Equal(cluster.DeploymentId, model.GetProperty("ftp").GetProperty("deployment").GetString());
        Assert.Equal(2, model.GetProperty("ftp").GetProperty("stages").GetArrayLength());
    }

    [SharedModelsFact]
    public async Task A_completion_through_the_SDKs_pipeline_answers_text_and_usage()
    {
        // The SDK's completions client is internal: its pipeline sends the request, as the SDK's protocol methods do.
        var client = cluster.OpenAI();
        var message = client.Pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(cluster.BaseUrl, "completions");
        message.Request.Headers.Set("Content-Type", "application/json");
        message.Request.Content = BinaryContent.Create(BinaryData.FromString(
            $$"""{"model": "{{HttpApiCluster.ModelName}}", "prompt": "I dreamed of", "max_tokens": 12, "temperature": 0}"""));
        await client.Pipeline.SendAsync(message);
        Assert.Equal(200, message.Response!.Status);
        using var json = JsonDocument.Parse(message.Response.Content.ToString());
        var root = json.RootElement;
        Assert.Equal("text_completion", root.GetProperty("object").GetString());
        Assert.False(string.IsNullOrEmpty(root.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal(12, root.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.True(root.GetProperty("usage").GetProperty("ftp").GetProperty("tokens_computed").GetInt64() > 0);
    }

    [SharedModelsFact]
    public async Task A_streamed_chat_completion_joins_to_the_text_the_whole_answer_has()
    {
        var chat = cluster.OpenAI().GetChatClient(HttpApiCluster.ModelName);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 };
        ChatCompletion whole = await chat.CompleteChatAsync(Question, options);
        Assert.Equal(ChatFinishReason.Length, whole.FinishReason);
        Assert.Equal(24, whole.Usage.OutputTokenCount);

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int chunks = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync(Question, options))
        {
            chunks++;
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.True(chunks > 3, $"the answer came in {chunks} chunks, not token by token");
        Assert.Equal(whole.Content[0].Text, streamed.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.Equal(24, usage?.OutputTokenCount); // the SDK asks for the usage chunk (stream_options.include_usage)
    }

    [SharedModelsFact]
    public async Task A_stop_string_ends_the_answer_where_it_first_occurs_streamed_or_not()
    {
        var chat = cluster.OpenAI().GetChatClient(HttpApiCluster.ModelName);
        var unstopped = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 48 };
        string whole = (await chat.CompleteChatAsync(Question, unstopped)).Value.Content[0].Text;
        // Three characters a third of the way in: the answer ends before them, tokens before its end.
        string stop = whole.Substring(whole.Length / 3, 3);
        string expected = whole[..whole.IndexOf(stop, StringComparison.Ordinal)];
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 48, StopSequences = { stop } };

        ChatCompletion stopped = await chat.CompleteChatAsync(Question, options);
        Assert.Equal(expected, stopped.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
        Assert.True(stopped.Usage.OutputTokenCount < 48, $"{stopped.Usage.OutputTokenCount} tokens: generation went on past the stop string \"{stop}\" in \"{whole}\"");

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(Question, options))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            finish ??= update.FinishReason;
        }
        Assert.Equal(expected, streamed.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
    }

    [SharedModelsFact]
    public async Task A_streamed_answers_logprobs_joined_are_the_whole_answers()
    {
        var chat = cluster.OpenAI().GetChatClient(HttpApiCluster.ModelName);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16, IncludeLogProbabilities = true, TopLogProbabilityCount = 2 };
        ChatCompletion whole = await chat.CompleteChatAsync(Question, options);
        Assert.Equal(16, whole.ContentTokenLogProbabilities.Count);

        var streamed = new List<ChatTokenLogProbabilityDetails>();
        await foreach (var update in chat.CompleteChatStreamingAsync(Question, options))
            streamed.AddRange(update.ContentTokenLogProbabilities);

        static string Describe(ChatTokenLogProbabilityDetails t) =>
            $"{t.Token} {t.LogProbability} [{string.Join(", ", t.TopLogProbabilities.Select(a => $"{a.Token} {a.LogProbability}"))}]";
        Assert.Equal(whole.ContentTokenLogProbabilities.Select(Describe), streamed.Select(Describe));
    }

    [SharedModelsFact]
    public async Task A_wrong_key_is_refused_with_401_and_no_key_likewise()
    {
        var refused = await Assert.ThrowsAsync<ClientResultException>(() =>
            cluster.OpenAI("sk-wrong").GetChatClient(HttpApiCluster.ModelName).CompleteChatAsync(Question));
        Assert.Equal(401, refused.Status);
        Assert.Contains("API key", refused.Message, StringComparison.Ordinal);

        using var http = cluster.Http(key: null);
        using var response = await http.GetAsync("models");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("invalid_api_key", await ErrorCode(response));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri(cluster.BaseUrl, "/health/live"))).StatusCode); // probes need no key
    }

    [SharedModelsFact]
    public async Task A_key_added_to_the_key_file_works_and_one_taken_out_stops_working_without_a_restart()
    {
        const string added = "sk-added-while-running";
        string original = await File.ReadAllTextAsync(cluster.KeyFile);
        try
        {
            await File.WriteAllTextAsync(cluster.KeyFile, original + added + "\n");
            Assert.True(await AnsweredWithin(added, TimeSpan.FromSeconds(10), expected: HttpStatusCode.OK), "a key added to the file was not taken");
            await File.WriteAllTextAsync(cluster.KeyFile, original);
            Assert.True(await AnsweredWithin(added, TimeSpan.FromSeconds(10), expected: HttpStatusCode.Unauthorized), "a key taken out of the file still works");
        }
        finally
        {
            await File.WriteAllTextAsync(cluster.KeyFile, original);
        }

        // The file is looked at again at most once a second: poll until the answer changes.
        async Task<bool> AnsweredWithin(string key, TimeSpan patience, HttpStatusCode expected)
        {
            using var http = cluster.Http(key);
            var deadline = DateTime.UtcNow + patience;
            while (DateTime.UtcNow < deadline)
            {
                using var response = await http.GetAsync("models");
                if (response.StatusCode == expected) return true;
                await Task.Delay(100);
            }
            return false;
        }
    }

    [SharedModelsFact]
    public async Task An_unknown_model_is_404_and_names_the_served_ones()
    {
        var refused = await Assert.ThrowsAsync<ClientResultException>(() =>
            cluster.OpenAI().GetChatClient("no-such-model").CompleteChatAsync(Question));
        Assert.Equal(404, refused.Status);
        Assert.Contains(HttpApiCluster.ModelName, refused.Message, StringComparison.Ordinal);
    }

    [SharedModelsFact]
    public async Task A_body_over_the_limit_is_413_and_a_bad_field_is_400_naming_it()
    {
        using var http = cluster.Http();
        string prompt = new('x', 17 << 20);
        // Expect: 100-continue, as clients sending large bodies do: the refusal comes before the body is sent.
        using var request = new HttpRequestMessage(HttpMethod.Post, "completions")
        {
            Content = Json($$"""{"model": "{{HttpApiCluster.ModelName}}", "prompt": "{{prompt}}"}"""),
        };
        request.Headers.ExpectContinue = true;
        using var large = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
        Assert.Equal("request_too_large", await ErrorCode(large));

        using var bad = await http.PostAsync("chat/completions", Json($$"""{"model": "{{HttpApiCluster.ModelName}}", "messages": [], "temperature": 7}"""));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        using var error = JsonDocument.Parse(await bad.Content.ReadAsStringAsync());
        Assert.Equal("invalid_request_error", error.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.NotNull(error.RootElement.GetProperty("error").GetProperty("param").GetString());
    }

    [SharedModelsFact]
    public async Task Uploads_and_batches_that_cannot_be_taken_are_refused_naming_the_field()
    {
        using var http = cluster.Http();
        using (var notMultipart = await http.PostAsync("files", Json("{}")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, notMultipart.StatusCode);
            Assert.Contains("multipart/form-data", (await Error(notMultipart)).Message, StringComparison.Ordinal);
        }
        using (var form = new MultipartFormDataContent { { new StringContent("fine-tune"), "purpose" }, { new ByteArrayContent("{}\n"u8.ToArray()), "file", "x.jsonl" } })
        using (var wrongPurpose = await http.PostAsync("files", form))
            Assert.Equal((HttpStatusCode.BadRequest, "purpose"), (wrongPurpose.StatusCode, (await Error(wrongPurpose)).Param));
        using (var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" } })
        using (var noFile = await http.PostAsync("files", form))
            Assert.Equal((HttpStatusCode.BadRequest, "file", "missing_required_parameter"), (noFile.StatusCode, (await Error(noFile)).Param, (await Error(noFile)).Code));

        foreach (var (body, status, param) in new[]
        {
            ("""{"input_file_id": "file-0123456789abcdef01234567", "endpoint": "/v1/embeddings", "completion_window": "24h"}""", HttpStatusCode.BadRequest, "endpoint"),
            ("""{"input_file_id": "file-0123456789abcdef01234567", "endpoint": "/v1/completions", "completion_window": "1h"}""", HttpStatusCode.BadRequest, "completion_window"),
            ("""{"endpoint": "/v1/completions", "completion_window": "24h"}""", HttpStatusCode.BadRequest, "input_file_id"),
            ("""{"input_file_id": "file-0123456789abcdef01234567", "endpoint": "/v1/completions", "completion_window": "24h"}""", HttpStatusCode.NotFound, "input_file_id"),
        })
        {
            using var refused = await http.PostAsync("batches", Json(body));
            Assert.Equal((status, param), (refused.StatusCode, (await Error(refused)).Param));
        }
    }

    private static async Task<(string Message, string? Param, string? Code)> Error(HttpResponseMessage response)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = json.RootElement.GetProperty("error");
        return (error.GetProperty("message").GetString()!, error.GetProperty("param").GetString(), error.GetProperty("code").GetString());
    }

    [SharedModelsFact]
    public async Task An_unknown_file_is_404()
    {
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => cluster.OpenAI().GetOpenAIFileClient().GetFileAsync("file-0123456789abcdef01234567"));
        Assert.Equal(404, refused.Status);
    }

    [SharedModelsFact]
    public async Task A_client_that_disconnects_mid_stream_stops_its_sequence()
    {
        var coordinator = cluster.Client.GetGrain<ICoordinatorGrain>(cluster.LongDeploymentId);
        const int maxTokens = 480;
        string body = $$"""{"model": "{{HttpApiCluster.LongModelName}}", "prompt": "Once upon a time", "max_tokens": {{maxTokens}}, "seed": 7, "temperature": 1.5""";
        // The same request answered whole: how long the answer the cut-off stream would have had is.
        using (var http = cluster.Http())
        {
            using var whole = await http.PostAsync("completions", Json(body + "}"));
            using var answer = JsonDocument.Parse(await whole.Content.ReadAsStringAsync());
            int full = answer.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
            Assert.True(full >= 200, $"the whole answer has {full} tokens, too few for a cut-off to show");
        }

        long rowsBefore = (await coordinator.Reports())[0].Rows;
        using (var http = cluster.Http())
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "completions") { Content = Json(body + @", ""stream"": true}") };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var events = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await events.ReadLineAsync());
        } // the connection closes here, with most of the answer still to come

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((await coordinator.Describe())!.SequencesRunning > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the sequence of a client that went away still runs after 30 s");
            await Task.Delay(50);
        }
        long rows = (await coordinator.Reports())[0].Rows - rowsBefore;
        Assert.True(rows < 100, $"stage 0 computed {rows} rows for a request cut off after its first event: it ran on for no one");
    }

    [SharedModelsFact]
    public async Task A_batch_made_with_the_SDK_completes_and_its_files_equal_ftpcluster_run_on_the_same_input()
    {
        string work = Directory.CreateTempSubdirectory("ftpcluster-http-batch-").FullName;
        try
        {
            string input = Path.Combine(work, "requests.jsonl");
            var lines = Enumerable.Range(0, 8).Select(i => JsonSerializer.Serialize(new
            {
                custom_id = $"q{i}", method = "POST", url = "/v1/chat/completions",
                body = new { model = HttpApiCluster.ModelName, messages = new[] { new { role = "user", content = $"Dream number {i}" } }, max_tokens = 10 + i, temperature = 0 },
            })).ToList();
            lines.Insert(3, "{ not json");
            lines.Add(lines[0]); // a duplicate custom_id
            await File.WriteAllLinesAsync(input, lines);

            var client = cluster.OpenAI();
            var files = client.GetOpenAIFileClient();
            OpenAIFile file = await files.UploadFileAsync(input, FileUploadPurpose.Batch);
            Assert.Equal(new FileInfo(input).Length, file.SizeInBytesLong);

            var batches = client.GetBatchClient();
            var operation = await batches.CreateBatchAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(new
            {
                input_file_id = file.Id, endpoint = "/v1/chat/completions", completion_window = "24h", metadata = new { test = "http" },
            })), waitUntilCompleted: false);
            using var created = JsonDocument.Parse(operation.GetRawResponse().Content.ToString());
            Assert.Equal("validating", created.RootElement.GetProperty("status").GetString());
            await operation.WaitForCompletionAsync().AsTask().WaitAsync(TimeSpan.FromMinutes(2));

            using var finished = JsonDocument.Parse((await operation.GetBatchAsync(options: null)).GetRawResponse().Content.ToString());
            var batch = finished.RootElement;
            Assert.Equal("completed", batch.GetProperty("status").GetString());
            var counts = batch.GetProperty("request_counts");
            Assert.Equal((10, 8, 2), (counts.GetProperty("total").GetInt32(), counts.GetProperty("completed").GetInt32(), counts.GetProperty("failed").GetInt32()));
            Assert.Equal("http", batch.GetProperty("metadata").GetProperty("test").GetString());
            string output = (await files.DownloadFileAsync(batch.GetProperty("output_file_id").GetString()!)).Value.ToString();
            string errors = (await files.DownloadFileAsync(batch.GetProperty("error_file_id").GetString()!)).Value.ToString();

            // The same input through ftpcluster run, on the same cluster and deployment.
            string runOutput = Path.Combine(work, "run.jsonl"), runErrors = Path.Combine(work, "run-errors.jsonl");
            string gateways = string.Join(",", cluster.Nodes.Values.Select(n => n.Ready.Gateway));
            var (code, _, stderr) = await CommandLineProcess.RunAsync("run", "--input", input, "--output", runOutput, "--errors", runErrors,
                "--model", JobLines.Aidreams, "--stages", "2", "--cluster", gateways, "--cluster-id", cluster.ClusterId);
            Assert.True(code == 0, stderr);
            Assert.Equal(Answers(await File.ReadAllTextAsync(runOutput)), Answers(output));
            Assert.Equal(Failures(await File.ReadAllTextAsync(runErrors)), Failures(errors));
            Assert.Equal(8, Answers(output).Count);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        // Each answer's custom_id, text, finish reason and token counts: what must agree (ids and times differ).
        static SortedDictionary<string, string> Answers(string jsonl) => new(jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            using var json = JsonDocument.Parse(line);
            var body = json.RootElement.GetProperty("response").GetProperty("body");
            var choice = body.GetProperty("choices")[0];
            var usage = body.GetProperty("usage");
            return KeyValuePair.Create(json.RootElement.GetProperty("custom_id").GetString()!,
                $"{choice.GetProperty("message").GetProperty("content").GetString()}|{choice.GetProperty("finish_reason").GetString()}|" +
                $"{usage.GetProperty("prompt_tokens").GetInt32()}|{usage.GetProperty("completion_tokens").GetInt32()}");
        }).ToDictionary(StringComparer.Ordinal), StringComparer.Ordinal);

        static string[] Failures(string jsonl) => [.. jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line =>
        {
            using var json = JsonDocument.Parse(line);
            var error = json.RootElement.GetProperty("error");
            return $"{error.GetProperty("line").GetInt32()}|{error.GetProperty("code").GetString()}";
        }).Order(StringComparer.Ordinal)];
    }

    [SharedModelsFact]
    public async Task Cancelling_a_finished_batch_is_refused_and_unknown_batches_are_404()
    {
        string input = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(input, JsonSerializer.Serialize(new
            {
                custom_id = "only", method = "POST", url = "/v1/completions",
                body = new { model = HttpApiCluster.ModelName, prompt = "I dreamed of", max_tokens = 4 },
            }) + "\n");
            var client = cluster.OpenAI();
            OpenAIFile file = await client.GetOpenAIFileClient().UploadFileAsync(input, FileUploadPurpose.Batch);
            var operation = await client.GetBatchClient().CreateBatchAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(new
            {
                input_file_id = file.Id, endpoint = "/v1/completions", completion_window = "24h",
            })), waitUntilCompleted: true);
            var refused = await Assert.ThrowsAsync<ClientResultException>(() => operation.CancelAsync(options: null));
            Assert.Equal(400, refused.Status);
            Assert.Contains("completed", refused.Message, StringComparison.Ordinal);

            using var http = cluster.Http();
            using var unknown = await http.GetAsync("batches/batch_0123456789abcdef01234567");
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            using var listed = JsonDocument.Parse(await http.GetStringAsync("batches?limit=100"));
            Assert.Contains(listed.RootElement.GetProperty("data").EnumerateArray(), b => b.GetProperty("id").GetString() == operation.BatchId);
        }
        finally
        {
            File.Delete(input);
        }
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<string?> ErrorCode(HttpResponseMessage response) => (await Error(response)).Code;
}
