using System.Text;
using System.Text.Json;
using FtpCluster.Compute.Serving;
using static FtpCluster.Compute.Tests.Serving.Bodies;

namespace FtpCluster.Compute.Tests.Serving;

public sealed class CompletionResponseTests
{
    private static readonly ServedModel Model = new("tiny", [], 512, 70000, []);
    private static readonly FixedClock Clock = new(DateTimeOffset.FromUnixTimeSeconds(1_711_652_795));
    private static readonly FtpUsage Ftp = new(TokensComputed: 120, TokensSkipped: 30, WireBytes: 4096);

    private static PreparedRequest Prepared(string body, CompletionEndpoint endpoint = CompletionEndpoint.Completions) =>
        PreparedRequest.Prepare(Parse(body, endpoint), Model, new CharPromptEncoder());

    private static int[] Ids(string text) => [.. text.Select(c => (int)c)];

    private static JsonElement Respond(PreparedRequest request, CompletionOutcome outcome) =>
        JsonDocument.Parse(CompletionResponse.Create(request, outcome, CharPromptEncoder.Decode, CharPromptEncoder.TokenBytes, Clock).ToUtf8Json()).RootElement;

    [Fact]
    public void A_completion_body_has_OpenAIs_shape_and_the_ftp_usage()
    {
        var body = Respond(Prepared("""{"model": "tiny", "prompt": "Hi"}"""), new CompletionOutcome(3, Ids(" there"), "length", null, Ftp));
        Assert.StartsWith("cmpl-", body.GetProperty("id").GetString());
        Assert.Equal(5 + 24, body.GetProperty("id").GetString()!.Length);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        Assert.Equal(1_711_652_795, body.GetProperty("created").GetInt64());
        Assert.Equal("tiny", body.GetProperty("model").GetString());
        var choice = Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal(" there", choice.GetProperty("text").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind);
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        var usage = body.GetProperty("usage");
        Assert.Equal(3, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(6, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(9, usage.GetProperty("total_tokens").GetInt32());
        var ftp = usage.GetProperty("ftp");
        Assert.Equal(120, ftp.GetProperty("tokens_computed").GetInt64());
        Assert.Equal(30, ftp.GetProperty("tokens_skipped").GetInt64());
        Assert.Equal(4096, ftp.GetProperty("wire_bytes").GetInt64());
    }

    [Fact]
    public void A_chat_body_has_an_assistant_message()
    {
        var request = Prepared("""{"model": "tiny", "messages": [{"role": "user", "content": "2+2?"}]}""", CompletionEndpoint.ChatCompletions);
        var body = Respond(request, new CompletionOutcome(request.PromptIds.Length, Ids("4 ✓"), "stop", null, Ftp));
        Assert.StartsWith("chatcmpl-", body.GetProperty("id").GetString());
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        var choice = Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        Assert.Equal("4 ✓", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.False(choice.TryGetProperty("text", out _));
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public void Text_is_written_as_UTF8_not_escaped()
    {
        var response = CompletionResponse.Create(Prepared("""{"model": "tiny", "prompt": "x"}"""),
            new CompletionOutcome(2, Ids("café <b>"), "length", null, Ftp), CharPromptEncoder.Decode, CharPromptEncoder.TokenBytes, Clock);
        Assert.Contains("\"text\":\"café <b>\"", Encoding.UTF8.GetString(response.ToUtf8Json()));
    }

    [Fact]
    public void The_text_is_cut_before_the_first_stop_string_and_the_answer_stops()
    {
        var request = Prepared("""{"model": "tiny", "prompt": "x", "stop": ["END", "."]}""");
        var body = Respond(request, new CompletionOutcome(2, Ids("One. Two END"), "length", null, Ftp));
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("One", choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(12, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public void Completion_logprobs_are_parallel_arrays_up_to_the_stop_string()
    {
        var request = Prepared("""{"model": "tiny", "prompt": "x", "logprobs": 2, "stop": "!"}""");
        int[] ids = Ids("ab!c");
        TokenLogprob[] logprobs =
        [
            new('a', -0.1f, [new('a', -0.1f), new('b', -2.5f), new('z', -3f)]),
            new('b', -0.7f, [new('c', -0.5f), new('b', -0.7f)]),
            new('!', -0.2f, [new('!', -0.2f)]),
            new('c', -1f, [new('c', -1f)]),
        ];
        var body = Respond(request, new CompletionOutcome(2, ids, "length", logprobs, Ftp));
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("ab", choice.GetProperty("text").GetString());
        var lp = choice.GetProperty("logprobs");
        Assert.Equal(["a", "b"], lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal([-0.1f, -0.7f], lp.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetSingle()));
        Assert.Equal([0, 1], lp.GetProperty("text_offset").EnumerateArray().Select(t => t.GetInt32()));
        var top = lp.GetProperty("top_logprobs");
        Assert.Equal(2, top.GetArrayLength());
        Assert.Equal(["a", "b"], top[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal(-2.5f, top[0].GetProperty("b").GetSingle());
        Assert.Equal(["c", "b"], top[1].EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void Chat_logprobs_carry_each_tokens_bytes_and_alternatives()
    {
        var request = Prepared("""{"model": "tiny", "messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 1}""", CompletionEndpoint.ChatCompletions);
        TokenLogprob[] logprobs =
        [
            new('é', float.NegativeInfinity, [new('é', -0.01f), new('e', -5f)]),
            new('!', -0.3f, [new('?', -0.2f)]),
        ];
        var body = Respond(request, new CompletionOutcome(request.PromptIds.Length, Ids("é!"), "stop", logprobs, Ftp));
        var content = body.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content");
        Assert.Equal(2, content.GetArrayLength());
        var first = content[0];
        Assert.Equal("é", first.GetProperty("token").GetString());
        Assert.Equal(CompletionResponse.UnrepresentableLogprob, first.GetProperty("logprob").GetSingle());
        Assert.Equal([0xC3, 0xA9], first.GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()));
        var alternative = Assert.Single(first.GetProperty("top_logprobs").EnumerateArray());
        Assert.Equal("é", alternative.GetProperty("token").GetString());
        Assert.Equal(-0.01f, alternative.GetProperty("logprob").GetSingle());
        Assert.Equal([0xC3, 0xA9], alternative.GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()));
        Assert.Equal("?", content[1].GetProperty("top_logprobs")[0].GetProperty("token").GetString());
    }

    [Fact]
    public void A_character_split_across_tokens_comes_out_whole_in_the_text()
    {
        // Byte-level tokens: each id is one byte; "é" is two of them.
        static string DecodeBytes(int[] ids) => Encoding.UTF8.GetString([.. ids.Select(id => (byte)id)]);
        var request = Prepared("""{"model": "tiny", "prompt": "x", "logprobs": 0}""");
        int[] ids = [0x63, 0xC3, 0xA9];
        TokenLogprob[] logprobs = [.. ids.Select(id => new TokenLogprob(id, -1f, []))];
        var response = CompletionResponse.Create(request, new CompletionOutcome(2, ids, "length", logprobs, Ftp), DecodeBytes, id => [(byte)id], Clock);
        Assert.Equal("cé", response.Text);
        var lp = JsonDocument.Parse(response.ToUtf8Json()).RootElement.GetProperty("choices")[0].GetProperty("logprobs");
        Assert.Equal(["c", "\uFFFD", "\uFFFD"], lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()));
        Assert.All(lp.GetProperty("top_logprobs").EnumerateArray(), top => Assert.Empty(top.EnumerateObject()));
    }

    [Fact]
    public void An_outcome_that_does_not_fit_the_request_is_the_callers_bug()
    {
        var plain = Prepared("""{"model": "tiny", "prompt": "x"}""");
        var withLogprobs = Prepared("""{"model": "tiny", "prompt": "x", "logprobs": 1}""");
        Assert.Throws<ArgumentException>(() => Respond(plain, new CompletionOutcome(2, Ids("a"), "eos", null, Ftp)));
        Assert.Throws<ArgumentException>(() => Respond(withLogprobs, new CompletionOutcome(2, Ids("a"), "stop", null, Ftp)));
        Assert.Throws<ArgumentException>(() => Respond(withLogprobs, new CompletionOutcome(2, Ids("ab"), "stop", [new('a', -1f, [])], Ftp)));
        Assert.Throws<ArgumentException>(() => Respond(withLogprobs, new CompletionOutcome(2, Ids("a"), "stop", [new('b', -1f, [])], Ftp)));
    }

    [Fact]
    public void A_batch_success_line_wraps_the_body()
    {
        var response = CompletionResponse.Create(Prepared("""{"model": "tiny", "prompt": "x"}"""),
            new CompletionOutcome(2, Ids("ok"), "stop", null, Ftp), CharPromptEncoder.Decode, CharPromptEncoder.TokenBytes, Clock);
        var line = BatchOutputLine.Success("req-1", response);
        Assert.False(line.IsError);
        Assert.Equal("req-1", line.CustomId);
        Assert.DoesNotContain((byte)'\n', line.Json.ToArray());
        var json = JsonDocument.Parse(line.Json).RootElement;
        Assert.StartsWith("batch_req_", json.GetProperty("id").GetString());
        Assert.Equal("req-1", json.GetProperty("custom_id").GetString());
        var wrapped = json.GetProperty("response");
        Assert.Equal(200, wrapped.GetProperty("status_code").GetInt32());
        Assert.StartsWith("req_", wrapped.GetProperty("request_id").GetString());
        Assert.Equal(response.Id, wrapped.GetProperty("body").GetProperty("id").GetString());
        Assert.Equal("ok", wrapped.GetProperty("body").GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("error").ValueKind);
    }

    [Fact]
    public void A_batch_failure_line_carries_code_message_and_input_line()
    {
        var line = BatchOutputLine.Failure(new BatchLineError(7, null, ErrorCodes.InvalidType, "requests.jsonl line 7: 'custom_id' must be a string, got number"));
        Assert.True(line.IsError);
        Assert.Equal(7, line.InputLine);
        var json = JsonDocument.Parse(line.Json).RootElement;
        Assert.StartsWith("batch_req_", json.GetProperty("id").GetString());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("custom_id").ValueKind);
        Assert.Equal(JsonValueKind.Null, json.GetProperty("response").ValueKind);
        var error = json.GetProperty("error");
        Assert.Equal("invalid_type", error.GetProperty("code").GetString());
        Assert.Equal("requests.jsonl line 7: 'custom_id' must be a string, got number", error.GetProperty("message").GetString());
        Assert.Equal(7, error.GetProperty("line").GetInt32());

        var withId = JsonDocument.Parse(BatchOutputLine.Failure(3, "r3", ErrorCodes.ModelNotFound, "no").Json).RootElement;
        Assert.Equal("r3", withId.GetProperty("custom_id").GetString());
        Assert.Throws<ArgumentOutOfRangeException>(() => BatchOutputLine.Failure(0, "r", "c", "m"));
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
