using System.Text.Json;
using FtpCluster.Compute.Serving;
using static FtpCluster.Compute.Tests.Serving.Bodies;

namespace FtpCluster.Compute.Tests.Serving;

public sealed class CompletionRequestTests
{
    [Fact]
    public void Completion_defaults_are_OpenAIs()
    {
        var request = Parse("""{"model": "m", "prompt": "Once upon"}""");
        Assert.Equal(CompletionEndpoint.Completions, request.Endpoint);
        Assert.Equal("m", request.Model);
        Assert.Equal("Once upon", request.PromptText);
        Assert.Null(request.PromptIds);
        Assert.Null(request.Messages);
        Assert.Null(request.MaxTokens);
        Assert.Equal(1.0, request.Temperature);
        Assert.Equal(1.0, request.TopP);
        Assert.Null(request.Seed);
        Assert.Empty(request.Stop);
        Assert.Null(request.Logprobs);
        Assert.Null(request.FtpSparsity);
        Assert.False(request.Stream);
        Assert.False(request.IncludeUsage);
    }

    [Fact]
    public void Every_completion_field_is_read()
    {
        var request = Parse("""
            {"model": "m", "prompt": [1, 72, 105], "max_tokens": 40, "temperature": 0, "top_p": 0.5, "seed": -7,
             "stop": ["\n\n", "END"], "n": 1, "logprobs": 3, "ftp": {"sparsity": 0.3}, "stream": true,
             "stream_options": {"include_usage": true}}
            """);
        Assert.Null(request.PromptText);
        Assert.Equal([1, 72, 105], request.PromptIds);
        Assert.Equal(40, request.MaxTokens);
        Assert.Equal(0.0, request.Temperature);
        Assert.Equal(0.5, request.TopP);
        Assert.Equal(-7, request.Seed);
        Assert.Equal(["\n\n", "END"], request.Stop);
        Assert.Equal(3, request.Logprobs);
        Assert.Equal(0.3, request.FtpSparsity);
        Assert.True(request.Stream);
        Assert.True(request.IncludeUsage);
    }

    [Fact]
    public void A_single_stop_string_is_a_list_of_one()
    {
        Assert.Equal(["###"], Parse("""{"model": "m", "prompt": "x", "stop": "###"}""").Stop);
    }

    [Fact]
    public void Unknown_fields_and_nulls_are_ignored()
    {
        var request = Parse("""
            {"model": "m", "prompt": "x", "frequency_penalty": 0.5, "presence_penalty": -1, "logit_bias": {"50256": -100},
             "user": "u-1", "suffix": null, "max_tokens": null, "temperature": null, "stop": null, "ftp": null, "best_of": 3}
            """);
        Assert.Null(request.MaxTokens);
        Assert.Equal(1.0, request.Temperature);
        Assert.Empty(request.Stop);
        Assert.Null(request.FtpSparsity);
    }

    [Fact]
    public void Chat_messages_outlive_the_document_they_came_from()
    {
        CompletionRequest request;
        using (var document = JsonDocument.Parse("""
            {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": " there"}]}]}
            """))
            request = CompletionRequest.Parse(document.RootElement, CompletionEndpoint.ChatCompletions);
        var messages = Assert.NotNull(request.Messages);
        Assert.Equal(2, messages.GetArrayLength());
        Assert.Equal("Be brief.", messages[0].GetProperty("content").GetString());
        Assert.Null(request.PromptText);
        Assert.Null(request.PromptIds);
    }

    [Fact]
    public void Chat_max_completion_tokens_wins_over_max_tokens()
    {
        const string messages = """ "messages": [{"role": "user", "content": "Hi"}] """;
        Assert.Equal(9, ChatBody($$"""{"model": "m", {{messages}}, "max_tokens": 30, "max_completion_tokens": 9}""").MaxTokens);
        Assert.Equal(30, ChatBody($$"""{"model": "m", {{messages}}, "max_tokens": 30}""").MaxTokens);
    }

    [Theory]
    [InlineData("", null)]
    [InlineData("""  "logprobs": false  """, null)]
    [InlineData("""  "logprobs": true  """, 0)]
    [InlineData("""  "logprobs": true, "top_logprobs": 5  """, 5)]
    [InlineData("""  "logprobs": true, "top_logprobs": 20  """, 20)]
    public void Chat_logprobs_are_a_switch_and_a_count(string fields, int? expected)
    {
        string extra = fields.Length == 0 ? "" : "," + fields;
        var request = ChatBody($$"""{"model": "m", "messages": [{"role": "user", "content": "Hi"}]{{extra}}}""");
        Assert.Equal(expected, request.Logprobs);
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("5", 5)]
    public void Completion_logprobs_are_a_count(string value, int expected)
    {
        Assert.Equal(expected, Parse($$"""{"model": "m", "prompt": "x", "logprobs": {{value}}}""").Logprobs);
    }

    [Theory]
    [InlineData("""{"prompt": "x"}""", "missing_required_parameter", "model", "'model' is required")]
    [InlineData("""{"model": 3, "prompt": "x"}""", "invalid_type", "model", "'model' must be a string, got number")]
    [InlineData("""{"model": "m"}""", "missing_required_parameter", "prompt", "'prompt' is required")]
    [InlineData("""{"model": "m", "prompt": ""}""", "invalid_value", "prompt", "'prompt' must be a non-empty string or a non-empty array of token ids, got \"\"")]
    [InlineData("""{"model": "m", "prompt": []}""", "invalid_value", "prompt", "'prompt' must be a non-empty string or a non-empty array of token ids, got an empty array")]
    [InlineData("""{"model": "m", "prompt": 5}""", "invalid_type", "prompt", "'prompt' must be a non-empty string or a non-empty array of token ids, got number")]
    [InlineData("""{"model": "m", "prompt": [1, "a"]}""", "invalid_type", "prompt[1]", "'prompt[1]' must be a token id (an integer >= 0), got string")]
    [InlineData("""{"model": "m", "prompt": [1, -2]}""", "invalid_value", "prompt[1]", "'prompt[1]' must be a token id (an integer >= 0), got -2")]
    [InlineData("""{"model": "m", "prompt": "x", "max_tokens": -3}""", "invalid_value", "max_tokens", "'max_tokens' must be a positive integer, got -3")]
    [InlineData("""{"model": "m", "prompt": "x", "max_tokens": 0}""", "invalid_value", "max_tokens", "'max_tokens' must be a positive integer, got 0")]
    [InlineData("""{"model": "m", "prompt": "x", "max_tokens": "5"}""", "invalid_type", "max_tokens", "'max_tokens' must be a positive integer, got string")]
    [InlineData("""{"model": "m", "prompt": "x", "max_tokens": 2.5}""", "invalid_value", "max_tokens", "'max_tokens' must be a positive integer, got 2.5")]
    [InlineData("""{"model": "m", "prompt": "x", "temperature": 2.5}""", "invalid_value", "temperature", "'temperature' must be a number in [0, 2], got 2.5")]
    [InlineData("""{"model": "m", "prompt": "x", "temperature": "hot"}""", "invalid_type", "temperature", "'temperature' must be a number in [0, 2], got string")]
    [InlineData("""{"model": "m", "prompt": "x", "top_p": 0}""", "invalid_value", "top_p", "'top_p' must be a number in (0, 1], got 0")]
    [InlineData("""{"model": "m", "prompt": "x", "top_p": 1.01}""", "invalid_value", "top_p", "'top_p' must be a number in (0, 1], got 1.01")]
    [InlineData("""{"model": "m", "prompt": "x", "seed": 1.5}""", "invalid_value", "seed", "'seed' must be a 32-bit integer, got 1.5")]
    [InlineData("""{"model": "m", "prompt": "x", "seed": 4294967296}""", "invalid_value", "seed", "'seed' must be a 32-bit integer, got 4294967296")]
    [InlineData("""{"model": "m", "prompt": "x", "seed": true}""", "invalid_type", "seed", "'seed' must be a 32-bit integer, got boolean")]
    [InlineData("""{"model": "m", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}""", "invalid_value", "stop", "'stop' must be a non-empty string or an array of at most 4 non-empty strings, got 5 strings")]
    [InlineData("""{"model": "m", "prompt": "x", "stop": ["a", ""]}""", "invalid_value", "stop[1]", "'stop[1]' must be a non-empty string, got \"\"")]
    [InlineData("""{"model": "m", "prompt": "x", "stop": ["a", 1]}""", "invalid_type", "stop[1]", "'stop[1]' must be a string, got number")]
    [InlineData("""{"model": "m", "prompt": "x", "stop": ""}""", "invalid_value", "stop", "'stop' must be a non-empty string, got \"\"")]
    [InlineData("""{"model": "m", "prompt": "x", "stop": {"s": 1}}""", "invalid_type", "stop", "'stop' must be a non-empty string or an array of at most 4 non-empty strings, got object")]
    [InlineData("""{"model": "m", "prompt": "x", "n": 2}""", "unsupported_value", "n", "'n' must be 1 (this server makes one choice per request), got 2")]
    [InlineData("""{"model": "m", "prompt": "x", "n": "1"}""", "invalid_type", "n", "'n' must be an integer, got string")]
    [InlineData("""{"model": "m", "prompt": "x", "logprobs": 6}""", "invalid_value", "logprobs", "'logprobs' must be an integer in [0, 5], got 6")]
    [InlineData("""{"model": "m", "prompt": "x", "logprobs": true}""", "invalid_type", "logprobs", "'logprobs' must be an integer in [0, 5], got boolean")]
    [InlineData("""{"model": "m", "prompt": "x", "ftp": 0.3}""", "invalid_type", "ftp", "'ftp' must be an object, got number")]
    [InlineData("""{"model": "m", "prompt": "x", "ftp": {}}""", "missing_required_parameter", "ftp.sparsity", "'ftp.sparsity' is required")]
    [InlineData("""{"model": "m", "prompt": "x", "ftp": {"sparsity": 1}}""", "invalid_value", "ftp.sparsity", "'ftp.sparsity' must be a number in [0, 1), got 1")]
    [InlineData("""{"model": "m", "prompt": "x", "ftp": {"sparsity": -0.1}}""", "invalid_value", "ftp.sparsity", "'ftp.sparsity' must be a number in [0, 1), got -0.1")]
    [InlineData("""{"model": "m", "prompt": "x", "stream": "yes"}""", "invalid_type", "stream", "'stream' must be a boolean, got string")]
    [InlineData("""{"model": "m", "prompt": "x", "stream_options": {"include_usage": true}}""", "invalid_value", "stream_options", "'stream_options' is only allowed when 'stream' is true")]
    [InlineData("""{"model": "m", "prompt": "x", "stream": true, "stream_options": {"include_usage": 1}}""", "invalid_type", "stream_options.include_usage", "'stream_options.include_usage' must be a boolean, got number")]
    [InlineData("""[1, 2]""", "invalid_type", "body", "'body' must be an object, got array")]
    public void Completion_body_problems_are_refused_naming_the_field(string json, string code, string param, string message)
    {
        var error = Refused(json);
        Assert.Equal(message, error.Message);
        Assert.Equal(code, error.Code);
        Assert.Equal(param, error.Param);
    }

    [Theory]
    [InlineData("""["a", "b"]""", "array of strings")]
    [InlineData("""[[1, 2], [3]]""", "array of arrays")]
    public void Several_prompts_in_one_request_are_refused(string prompt, string found)
    {
        var error = Refused($$"""{"model": "m", "prompt": {{prompt}}}""");
        Assert.Equal(ErrorCodes.UnsupportedValue, error.Code);
        Assert.Equal($"'prompt' must be one prompt (a non-empty string or a non-empty array of token ids), got an {found}: this server takes one prompt per request", error.Message);
    }

    [Theory]
    [InlineData("""{"model": "m"}""", "missing_required_parameter", "messages", "'messages' is required")]
    [InlineData("""{"model": "m", "messages": "Hi"}""", "invalid_type", "messages", "'messages' must be a non-empty array of messages, got string")]
    [InlineData("""{"model": "m", "messages": []}""", "invalid_value", "messages", "'messages' must be a non-empty array of messages, got an empty array")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": "a"}, "b"]}""", "invalid_type", "messages[1]", "'messages[1]' must be an object, got string")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": 3, "content": "c"}]}""",
        "invalid_type", "messages[2].role", "'messages[2].role' must be a string, got number")]
    [InlineData("""{"model": "m", "messages": [{"content": "a"}]}""", "missing_required_parameter", "messages[0].role", "'messages[0].role' is required")]
    [InlineData("""{"model": "m", "messages": [{"role": "user"}]}""", "missing_required_parameter", "messages[0].content", "'messages[0].content' is required")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": 7}]}""", "invalid_type", "messages[0].content", "'messages[0].content' must be a string or an array of text parts, got number")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]}]}""",
        "unsupported_value", "messages[0].content[1].type", "'messages[0].content[1].type' is \"image_url\": only \"text\" parts are supported")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}""", "missing_required_parameter", "messages[0].content[0].text", "'messages[0].content[0].text' is required")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": ["a"]}]}""", "invalid_type", "messages[0].content[0]", "'messages[0].content[0]' must be an object, got string")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": "a"}], "logprobs": 2}""", "invalid_type", "logprobs", "'logprobs' must be a boolean, got number")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": "a"}], "logprobs": true, "top_logprobs": 21}""", "invalid_value", "top_logprobs", "'top_logprobs' must be an integer in [0, 20], got 21")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": "a"}], "top_logprobs": 3}""", "invalid_value", "top_logprobs", "'top_logprobs' is only allowed when 'logprobs' is true")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": "a"}], "logprobs": false, "top_logprobs": 3}""", "invalid_value", "top_logprobs", "'top_logprobs' is only allowed when 'logprobs' is true")]
    [InlineData("""{"model": "m", "messages": [{"role": "user", "content": "a"}], "max_completion_tokens": -1}""", "invalid_value", "max_completion_tokens", "'max_completion_tokens' must be a positive integer, got -1")]
    public void Chat_body_problems_are_refused_naming_the_field(string json, string code, string param, string message)
    {
        var error = ChatRefused(json);
        Assert.Equal(message, error.Message);
        Assert.Equal(code, error.Code);
        Assert.Equal(param, error.Param);
    }

    [Fact]
    public void Endpoint_urls_are_OpenAIs()
    {
        Assert.Equal("/v1/completions", CompletionEndpoint.Completions.Url());
        Assert.Equal("/v1/chat/completions", CompletionEndpoint.ChatCompletions.Url());
        Assert.True(CompletionEndpoints.TryParseUrl("/v1/chat/completions", out var chat));
        Assert.Equal(CompletionEndpoint.ChatCompletions, chat);
        Assert.False(CompletionEndpoints.TryParseUrl("/v1/embeddings", out _));
        Assert.False(CompletionEndpoints.TryParseUrl("/v1/completions/", out _));
    }
}
