using System.Text;
using FtpCluster.Compute.Serving;

namespace FtpCluster.Compute.Tests.Serving;

public sealed class BatchInputReaderTests : IDisposable
{
    private const string Chat = """{"custom_id": "c1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}}""";
    private const string Completion = """{"custom_id": "p1", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "Once", "max_tokens": 5}}""";

    private readonly string _folder = Directory.CreateTempSubdirectory("ftpcluster-batch-in-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static List<BatchInputEntry> Read(string text, int maxRequests = BatchInputReader.DefaultMaxRequests) =>
        Read(Encoding.UTF8.GetBytes(text), maxRequests);

    private static List<BatchInputEntry> Read(byte[] bytes, int maxRequests = BatchInputReader.DefaultMaxRequests) =>
        [.. new BatchInputReader(new MemoryStream(bytes), "requests.jsonl", maxRequests).Read()];

    private static BatchLineError OnlyError(string line)
    {
        var entry = Assert.Single(Read(line + "\n"));
        return Assert.IsType<BatchLineError>(entry);
    }

    /// <summary>A well-formed line with one field of the top level replaced (or left out when <paramref name="json"/> is null).</summary>
    private static string LineWith(string field, string? json)
    {
        var fields = new Dictionary<string, string>
        {
            ["custom_id"] = "\"r1\"",
            ["method"] = "\"POST\"",
            ["url"] = "\"/v1/completions\"",
            ["body"] = """{"model": "m", "prompt": "x"}""",
        };
        if (json is null) fields.Remove(field);
        else fields[field] = json;
        return "{" + string.Join(", ", fields.Select(f => $"\"{f.Key}\": {f.Value}")) + "}";
    }

    [Fact]
    public void Good_lines_of_both_endpoints_are_read_with_their_line_numbers()
    {
        var entries = Read($"{Chat}\n\n   \n{Completion}");
        Assert.Equal(2, entries.Count);
        var chat = Assert.IsType<BatchLine>(entries[0]);
        Assert.Equal(1, chat.LineNumber);
        Assert.Equal("c1", chat.CustomId);
        Assert.Equal(CompletionEndpoint.ChatCompletions, chat.Endpoint);
        Assert.Equal("Hi", chat.Request.Messages!.Value[0].GetProperty("content").GetString());
        var completion = Assert.IsType<BatchLine>(entries[1]);
        Assert.Equal(4, completion.LineNumber);
        Assert.Equal(CompletionEndpoint.Completions, completion.Endpoint);
        Assert.Equal("Once", completion.Request.PromptText);
        Assert.Equal(5, completion.Request.MaxTokens);
    }

    [Fact]
    public void Windows_line_ends_and_a_byte_order_mark_are_accepted()
    {
        byte[] bytes = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes($"{Chat}\r\n\r\n{Completion}\r\n")];
        var entries = Read(bytes);
        Assert.Equal([1, 3], entries.Select(e => Assert.IsType<BatchLine>(e).LineNumber));
    }

    [Fact]
    public void Not_JSON_is_refused_with_the_readers_position_in_the_line()
    {
        var entries = Read($"{Chat}\n{{\"custom_id\": \"x\", oops}}\n{Completion}\n");
        var error = Assert.IsType<BatchLineError>(entries[1]);
        Assert.Equal(2, error.LineNumber);
        Assert.Null(error.CustomId);
        Assert.Equal(ErrorCodes.InvalidJsonLine, error.Code);
        Assert.StartsWith("requests.jsonl line 2: not valid JSON at byte 19 of the line: 'o' is an invalid start of a property name", error.Message);
        Assert.DoesNotContain("LineNumber", error.Message);
        Assert.IsType<BatchLine>(entries[2]);
    }

    [Fact]
    public void A_property_given_twice_is_not_JSON_we_guess_at()
    {
        var error = OnlyError("""{"custom_id": "a", "custom_id": "b", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "x"}}""");
        Assert.Equal(ErrorCodes.InvalidJsonLine, error.Code);
        Assert.Contains("custom_id", error.Message);
    }

    [Fact]
    public void A_line_that_is_not_an_object_is_refused()
    {
        var error = OnlyError("""["custom_id", "x"]""");
        Assert.Equal(ErrorCodes.InvalidType, error.Code);
        Assert.Equal("requests.jsonl line 1: the line must be a JSON object, got array", error.Message);
    }

    [Theory]
    [InlineData(null, "missing_required_parameter", "'custom_id' is required")]
    [InlineData("7", "invalid_type", "'custom_id' must be a string, got number")]
    [InlineData("\"\"", "invalid_value", "'custom_id' must be a non-empty string, got \"\"")]
    public void A_missing_or_bad_custom_id_is_refused(string? customId, string code, string message)
    {
        var error = OnlyError(LineWith("custom_id", customId));
        Assert.Null(error.CustomId);
        Assert.Equal(code, error.Code);
        Assert.Equal("requests.jsonl line 1: " + message, error.Message);
    }

    [Fact]
    public void The_message_names_the_line_as_the_user_counts_it()
    {
        string lines = string.Concat(Enumerable.Range(1, 6).Select(i => LineWith("custom_id", $"\"r{i}\"") + "\n"));
        var error = Assert.IsType<BatchLineError>(Read(lines + LineWith("custom_id", "7") + "\n")[6]);
        Assert.Equal("requests.jsonl line 7: 'custom_id' must be a string, got number", error.Message);
    }

    [Fact]
    public void A_custom_id_seen_before_is_refused_and_the_first_line_runs()
    {
        var entries = Read($"{Chat}\n{Completion}\n{Chat}\n");
        Assert.IsType<BatchLine>(entries[0]);
        var error = Assert.IsType<BatchLineError>(entries[2]);
        Assert.Equal(ErrorCodes.DuplicateCustomId, error.Code);
        Assert.Null(error.CustomId);
        Assert.Equal("requests.jsonl line 3: 'custom_id' \"c1\" is already the id of line 1; that line is run and this one is not", error.Message);
    }

    [Theory]
    [InlineData("method", "\"GET\"", "invalid_value", "'method' must be \"POST\", got \"GET\"")]
    [InlineData("method", null, "missing_required_parameter", "'method' is required")]
    [InlineData("method", "1", "invalid_type", "'method' must be a string, got number")]
    [InlineData("url", "\"/v1/embeddings\"", "invalid_value", "'url' must be \"/v1/completions\" or \"/v1/chat/completions\", got \"/v1/embeddings\"")]
    [InlineData("url", null, "missing_required_parameter", "'url' is required")]
    [InlineData("body", null, "missing_required_parameter", "'body' is required")]
    [InlineData("body", "\"prompt\"", "invalid_type", "'body' must be an object, got string")]
    [InlineData("body", """{"model": "m", "prompt": "x", "max_tokens": -3}""", "invalid_value", "'max_tokens' must be a positive integer, got -3")]
    [InlineData("body", """{"model": "m", "prompt": "x", "n": 2}""", "unsupported_value", "'n' must be 1 (this server makes one choice per request), got 2")]
    [InlineData("body", """{"model": "m", "prompt": "x", "stream": true}""", "unsupported_value", "'body.stream' is true, but a batch cannot stream: leave it out or set it to false")]
    public void Problems_after_the_custom_id_are_refused_carrying_it(string field, string? json, string code, string message)
    {
        var error = OnlyError(LineWith(field, json));
        Assert.Equal("r1", error.CustomId);
        Assert.Equal(code, error.Code);
        Assert.Equal("requests.jsonl line 1: " + message, error.Message);
    }

    [Fact]
    public void A_long_value_is_shown_cut_short()
    {
        var error = OnlyError(LineWith("url", $"\"/v1/{new string('x', 100)}\""));
        Assert.Equal($"requests.jsonl line 1: 'url' must be \"/v1/completions\" or \"/v1/chat/completions\", got \"/v1/{new string('x', 56)}…\"", error.Message);
    }

    [Fact]
    public void Stream_false_is_accepted_in_a_batch()
    {
        Assert.IsType<BatchLine>(Assert.Single(Read(LineWith("body", """{"model": "m", "prompt": "x", "stream": false}"""))));
    }

    [Fact]
    public void Invalid_UTF8_is_refused_with_its_byte_offset_and_reading_goes_on()
    {
        byte[] bad = Encoding.UTF8.GetBytes("""{"custom_id": "é", "x": "ab""");
        int offset = bad.Length;
        byte[] bytes = [.. bad, 0xC3, 0x28, .. "\"}\n"u8, .. Encoding.UTF8.GetBytes(Chat)];
        var entries = Read(bytes);
        var error = Assert.IsType<BatchLineError>(entries[0]);
        Assert.Equal(ErrorCodes.InvalidEncoding, error.Code);
        Assert.Equal($"requests.jsonl line 1: not valid UTF-8: bad byte at offset {offset} of the line", error.Message);
        Assert.Equal(2, Assert.IsType<BatchLine>(entries[1]).LineNumber);
    }

    [Fact]
    public void A_line_over_1_MiB_is_refused_and_the_next_line_is_read_without_holding_the_long_one()
    {
        string path = Path.Combine(_folder, "requests.jsonl");
        int longLength = 3 << 20;
        using (var file = File.Create(path))
        {
            file.Write(Encoding.UTF8.GetBytes("{\"custom_id\": \"long\", \"pad\": \""));
            var pad = new byte[64 * 1024];
            Array.Fill(pad, (byte)'a');
            for (int written = 0; written < longLength; written += pad.Length) file.Write(pad);
            file.Write("\"}\n"u8);
            file.Write(Encoding.UTF8.GetBytes(Completion));
        }
        long lineBytes = new FileInfo(path).Length - Completion.Length - 1;

        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var entries = BatchInputReader.ReadFile(path).ToList();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        Assert.Equal(2, entries.Count);
        var error = Assert.IsType<BatchLineError>(entries[0]);
        Assert.Equal(ErrorCodes.LineTooLong, error.Code);
        Assert.Null(error.CustomId);
        Assert.Equal($"{path} line 1: the line has {lineBytes} bytes, over the limit of 1048576 (1 MiB) per request", error.Message);
        var good = Assert.IsType<BatchLine>(entries[1]);
        Assert.Equal(2, good.LineNumber);
        Assert.Equal("p1", good.CustomId);
        Assert.True(allocated < longLength, $"reading allocated {allocated} bytes: more than the {longLength}-byte line, so it was held");
    }

    [Fact]
    public void A_line_of_exactly_1_MiB_is_read()
    {
        string head = """{"custom_id": "edge", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "x"}, "pad": " """;
        string line = head + new string('a', BatchInputReader.MaxLineBytes - head.Length - 2) + "\"}";
        Assert.Equal(BatchInputReader.MaxLineBytes, Encoding.UTF8.GetByteCount(line));
        Assert.Equal("edge", Assert.IsType<BatchLine>(Assert.Single(Read(line + "\n"))).CustomId);
        var error = Assert.IsType<BatchLineError>(Assert.Single(Read(line + " \n")));
        Assert.Equal(ErrorCodes.LineTooLong, error.Code);
    }

    [Fact]
    public void Lines_past_the_limit_on_requests_are_refused_unread()
    {
        string text = $"{LineWith("custom_id", "\"a\"")}\n\n{LineWith("custom_id", "7")}\n{LineWith("custom_id", "\"c\"")}\nnot even json\n";
        var entries = Read(text, maxRequests: 2);
        Assert.Equal(4, entries.Count);
        Assert.IsType<BatchLine>(entries[0]);
        Assert.Equal(ErrorCodes.InvalidType, Assert.IsType<BatchLineError>(entries[1]).Code);
        var past = Assert.IsType<BatchLineError>(entries[2]);
        Assert.Equal(ErrorCodes.TooManyRequests, past.Code);
        Assert.Null(past.CustomId);
        Assert.Equal("requests.jsonl line 4: past the limit of 2 requests per file; the line is not run", past.Message);
        Assert.Equal(5, Assert.IsType<BatchLineError>(entries[3]).LineNumber);
    }

    [Fact]
    public void A_stream_is_read_once()
    {
        var reader = new BatchInputReader(new MemoryStream(Encoding.UTF8.GetBytes(Chat)), "in.jsonl");
        Assert.Single(reader.Read());
        Assert.Throws<InvalidOperationException>(() => reader.Read());
    }

    [Fact]
    public void A_refusal_from_Prepare_is_reported_at_its_line()
    {
        var reader = new BatchInputReader(new MemoryStream(Encoding.UTF8.GetBytes($"\n{Completion}\n")), "requests.jsonl");
        var line = Assert.IsType<BatchLine>(Assert.Single(reader.Read()));
        var error = reader.ErrorFor(line, new RequestException(ErrorCodes.ModelNotFound, "model", "the model 'm' is not served here"));
        Assert.Equal(new BatchLineError(2, "p1", ErrorCodes.ModelNotFound, "requests.jsonl line 2: the model 'm' is not served here"), error);
    }
}
