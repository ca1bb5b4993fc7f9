using System.Buffers;
using System.Text;
using System.Text.Json;
using FtpCluster.Compute.Serving;

namespace FtpCluster.Compute.Tests.Serving;

public sealed class CompletionChunksTests
{
    private const string Id = "chatcmpl-0123456789abcdef01234567";
    private const long Created = 1_711_652_795;
    private static readonly FtpUsage Ftp = new(TokensComputed: 120, TokensSkipped: 30, WireBytes: 4096);

    private static JsonElement Parse(byte[] json) => JsonDocument.Parse(json).RootElement;

    private static JsonElement ChatDelta(string text, bool first, string? finishReason) =>
        Parse(CompletionChunks.Delta(CompletionEndpoint.ChatCompletions, Id, Created, "tiny", text, first, finishReason));

    private static void AssertEnvelope(JsonElement chunk, string objectType, params string[] otherProperties)
    {
        Assert.Equal(["id", "object", "created", "model", .. otherProperties], chunk.EnumerateObject().Select(p => p.Name));
        Assert.Equal(Id, chunk.GetProperty("id").GetString());
        Assert.Equal(objectType, chunk.GetProperty("object").GetString());
        Assert.Equal(Created, chunk.GetProperty("created").GetInt64());
        Assert.Equal("tiny", chunk.GetProperty("model").GetString());
    }

    private static JsonElement OnlyChoice(JsonElement chunk, params string[] properties)
    {
        var choice = Assert.Single(chunk.GetProperty("choices").EnumerateArray());
        Assert.Equal(properties, choice.EnumerateObject().Select(p => p.Name));
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind);
        return choice;
    }

    [Fact]
    public void The_first_chat_chunk_names_the_assistant_and_carries_content()
    {
        var chunk = ChatDelta("Hel", first: true, finishReason: null);
        AssertEnvelope(chunk, "chat.completion.chunk", "choices");
        var choice = OnlyChoice(chunk, "index", "delta", "logprobs", "finish_reason");
        var delta = choice.GetProperty("delta");
        Assert.Equal(["role", "content"], delta.EnumerateObject().Select(p => p.Name));
        Assert.Equal("assistant", delta.GetProperty("role").GetString());
        Assert.Equal("Hel", delta.GetProperty("content").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("finish_reason").ValueKind);
    }

    [Fact]
    public void Later_chat_chunks_carry_only_content()
    {
        var delta = OnlyChoice(ChatDelta("lo", first: false, finishReason: null), "index", "delta", "logprobs", "finish_reason").GetProperty("delta");
        Assert.Equal(["content"], delta.EnumerateObject().Select(p => p.Name));
        Assert.Equal("lo", delta.GetProperty("content").GetString());
    }

    [Fact]
    public void A_closing_chat_chunk_with_no_text_has_an_empty_delta_and_the_finish_reason()
    {
        var choice = OnlyChoice(ChatDelta("", first: false, finishReason: "stop"), "index", "delta", "logprobs", "finish_reason");
        Assert.Empty(choice.GetProperty("delta").EnumerateObject());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public void A_closing_chat_chunk_may_carry_the_last_text()
    {
        var choice = OnlyChoice(ChatDelta("!", first: false, finishReason: "length"), "index", "delta", "logprobs", "finish_reason");
        Assert.Equal("!", choice.GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public void A_completion_chunk_carries_a_text_piece()
    {
        var chunk = Parse(CompletionChunks.Delta(CompletionEndpoint.Completions, Id, Created, "tiny", " there", first: true, finishReason: null));
        AssertEnvelope(chunk, "text_completion", "choices");
        var choice = OnlyChoice(chunk, "index", "text", "logprobs", "finish_reason");
        Assert.Equal(" there", choice.GetProperty("text").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("finish_reason").ValueKind);

        var last = Parse(CompletionChunks.Delta(CompletionEndpoint.Completions, Id, Created, "tiny", "", first: false, finishReason: "stop"));
        var lastChoice = OnlyChoice(last, "index", "text", "logprobs", "finish_reason");
        Assert.Equal("", lastChoice.GetProperty("text").GetString());
        Assert.Equal("stop", lastChoice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public void Chunk_text_is_UTF8_not_escaped()
    {
        byte[] chunk = CompletionChunks.Delta(CompletionEndpoint.ChatCompletions, Id, Created, "tiny", "café 漢字 <b>", first: false, finishReason: null);
        Assert.Contains("\"content\":\"café 漢字 <b>\"", Encoding.UTF8.GetString(chunk));
    }

    [Fact]
    public void A_character_beyond_the_basic_plane_reads_back_whole()
    {
        // The encoder writes such characters as a \u surrogate pair, which JSON parsers join again.
        byte[] chunk = CompletionChunks.Delta(CompletionEndpoint.Completions, Id, Created, "tiny", "a😀b", first: false, finishReason: null);
        Assert.Equal("a😀b", Parse(chunk).GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public void A_finish_reason_other_than_stop_or_length_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            CompletionChunks.Delta(CompletionEndpoint.Completions, Id, Created, "tiny", "", first: false, finishReason: "eos"));
        Assert.Contains("\"eos\"", error.Message);
    }

    [Theory]
    [InlineData(CompletionEndpoint.Completions)]
    [InlineData(CompletionEndpoint.ChatCompletions)]
    public void The_chunks_of_a_streamed_answer_join_to_its_text(CompletionEndpoint endpoint)
    {
        string[] tokens = ["Un", "e ré", "ponse 漢", "字 😀", "\n", "\nand more"];
        var streaming = new StreamingText(["\n\n"]);
        var matcher = new StopStringMatcher(["\n\n"]);
        var chunks = new List<byte[]>();
        string decoded = "";
        foreach (string token in tokens)
        {
            decoded += token;
            string piece = streaming.Next(decoded);
            if (piece.Length > 0) chunks.Add(CompletionChunks.Delta(endpoint, Id, Created, "tiny", piece, chunks.Count == 0, null));
            if (matcher.FindFirst(decoded) >= 0) break;
        }
        string final = decoded[..matcher.FindFirst(decoded)];
        chunks.Add(CompletionChunks.Delta(endpoint, Id, Created, "tiny", streaming.Finish(final), chunks.Count == 0, FinishReasons.Stop));

        var choices = chunks.Select(chunk => Assert.Single(Parse(chunk).GetProperty("choices").EnumerateArray())).ToArray();
        string joined = string.Concat(choices.Select(choice => endpoint == CompletionEndpoint.ChatCompletions
            ? choice.GetProperty("delta").TryGetProperty("content", out var content) ? content.GetString() : ""
            : choice.GetProperty("text").GetString()));
        Assert.Equal("Une réponse 漢字 😀", joined);
        Assert.Equal(final, joined);
        Assert.All(choices[..^1], choice => Assert.Equal(JsonValueKind.Null, choice.GetProperty("finish_reason").ValueKind));
        Assert.Equal("stop", choices[^1].GetProperty("finish_reason").GetString());
    }

    [Theory]
    [InlineData(CompletionEndpoint.Completions, "text_completion")]
    [InlineData(CompletionEndpoint.ChatCompletions, "chat.completion.chunk")]
    public void The_usage_chunk_has_no_choices_and_the_usage_of_the_whole_body(CompletionEndpoint endpoint, string objectType)
    {
        var chunk = Parse(CompletionChunks.Usage(endpoint, Id, Created, "tiny", promptTokens: 3, completionTokens: 6, Ftp));
        AssertEnvelope(chunk, objectType, "choices", "usage");
        Assert.Equal(0, chunk.GetProperty("choices").GetArrayLength());
        var usage = chunk.GetProperty("usage");
        Assert.Equal(3, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(6, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(9, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(120, usage.GetProperty("ftp").GetProperty("tokens_computed").GetInt64());
        Assert.Equal(30, usage.GetProperty("ftp").GetProperty("tokens_skipped").GetInt64());
        Assert.Equal(4096, usage.GetProperty("ftp").GetProperty("wire_bytes").GetInt64());

        var request = PreparedRequest.Prepare(Bodies.Parse("""{"model": "tiny", "prompt": "Hi"}"""),
            new ServedModel("tiny", [], 512, 70000, []), new CharPromptEncoder());
        var body = CompletionResponse.Create(request, new CompletionOutcome(3, [.. " there".Select(c => (int)c)], "length", null, Ftp),
            CharPromptEncoder.Decode, CharPromptEncoder.TokenBytes);
        Assert.Equal(Parse(body.ToUtf8Json()).GetProperty("usage").GetRawText(), usage.GetRawText());
    }

    [Fact]
    public void An_error_is_OpenAIs_error_object()
    {
        var error = Parse(CompletionChunks.Error("'n' must be 1", "invalid_request_error", "n", ErrorCodes.UnsupportedValue)).GetProperty("error");
        Assert.Equal(["message", "type", "param", "code"], error.EnumerateObject().Select(p => p.Name));
        Assert.Equal("'n' must be 1", error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("n", error.GetProperty("param").GetString());
        Assert.Equal("unsupported_value", error.GetProperty("code").GetString());

        var bare = Parse(CompletionChunks.Error("the cluster is gone", "server_error", null, null));
        Assert.Equal(["error"], bare.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Null, bare.GetProperty("error").GetProperty("param").ValueKind);
        Assert.Equal(JsonValueKind.Null, bare.GetProperty("error").GetProperty("code").ValueKind);
    }

    [Fact]
    public void An_event_is_data_then_the_JSON_then_a_blank_line_and_the_stream_ends_with_DONE()
    {
        var output = new ArrayBufferWriter<byte>();
        CompletionChunks.WriteEvent(output, """{"a":1}"""u8);
        CompletionChunks.WriteEvent(output, """{"b":"é"}"""u8);
        output.Write(CompletionChunks.Done);
        Assert.Equal("data: {\"a\":1}\n\ndata: {\"b\":\"é\"}\n\ndata: [DONE]\n\n", Encoding.UTF8.GetString(output.WrittenSpan));
    }

    [Fact]
    public void An_event_with_a_line_break_in_its_JSON_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => CompletionChunks.WriteEvent(new ArrayBufferWriter<byte>(), "{\n}"u8));
        Assert.Contains("byte 1", error.Message);
    }
}
