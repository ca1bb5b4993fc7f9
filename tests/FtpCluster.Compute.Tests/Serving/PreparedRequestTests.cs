using FtpCluster.Compute.Serving;
using static FtpCluster.Compute.Tests.Serving.Bodies;

namespace FtpCluster.Compute.Tests.Serving;

public sealed class PreparedRequestTests
{
    private static readonly ServedModel Model = new("tiny-llama", ["/models/tiny-llama", "models/tiny-llama"], ContextLength: 64, VocabSize: 1000, RouterSparsities: [0.3, 0.5]);
    private static readonly CharPromptEncoder Encoder = new();

    private static PreparedRequest Prepare(CompletionRequest request, ServedModel? model = null) =>
        PreparedRequest.Prepare(request, model ?? Model, Encoder);

    private static RequestException PrepareRefused(CompletionRequest request, ServedModel? model = null) =>
        Assert.Throws<RequestException>(() => Prepare(request, model));

    [Fact]
    public void A_text_prompt_is_encoded_with_BOS_and_defaults_to_16_tokens()
    {
        var prepared = Prepare(Parse("""{"model": "tiny-llama", "prompt": "Hi"}"""));
        Assert.Equal([CharPromptEncoder.Bos, 'H', 'i'], prepared.PromptIds);
        Assert.Equal(PreparedRequest.DefaultCompletionMaxTokens, prepared.MaxTokens);
        Assert.Equal(16, prepared.MaxTokens);
        Assert.Equal(1f, prepared.Sampling.Temperature);
        Assert.Equal(1f, prepared.Sampling.TopP);
        Assert.Null(prepared.RouterIndex);
        Assert.Null(prepared.Logprobs);
        Assert.Empty(prepared.Stop);
    }

    [Fact]
    public void Token_ids_are_taken_as_they_are_and_the_request_settings_carried()
    {
        var prepared = Prepare(Parse("""
            {"model": "/models/tiny-llama", "prompt": [1, 5, 999], "max_tokens": 61, "temperature": 0.7, "top_p": 0.9,
             "seed": 42, "stop": ["."], "logprobs": 2, "ftp": {"sparsity": 0.5000000001}}
            """));
        Assert.Equal([1, 5, 999], prepared.PromptIds);
        Assert.Equal(61, prepared.MaxTokens);
        Assert.Equal(0.7f, prepared.Sampling.Temperature);
        Assert.Equal(0.9f, prepared.Sampling.TopP);
        Assert.Equal(42, prepared.Sampling.Seed);
        Assert.Equal(["."], prepared.Stop);
        Assert.Equal(2, prepared.Logprobs);
        Assert.Equal(1, prepared.RouterIndex);
    }

    [Fact]
    public void A_chat_is_rendered_then_encoded_and_defaults_to_the_rest_of_the_context()
    {
        var prepared = Prepare(ChatBody("""{"model": "tiny-llama", "messages": [{"role": "user", "content": "Hi"}]}"""));
        string rendered = "user: Hi\nassistant: ";
        Assert.Equal(Encoder.Encode(rendered), prepared.PromptIds);
        Assert.Equal(64 - (rendered.Length + 1), prepared.MaxTokens);
    }

    [Fact]
    public void A_model_not_served_here_is_refused_naming_both()
    {
        var error = PrepareRefused(Parse("""{"model": "gpt-4o", "prompt": "x"}"""));
        Assert.Equal(ErrorCodes.ModelNotFound, error.Code);
        Assert.Equal("model", error.Param);
        Assert.Equal("the model 'gpt-4o' is not served here: this deployment serves 'tiny-llama' (also called '/models/tiny-llama', 'models/tiny-llama')", error.Message);

        error = PrepareRefused(Parse("""{"model": "gpt-4o", "prompt": "x"}"""), Model with { Aliases = [] });
        Assert.Equal("the model 'gpt-4o' is not served here: this deployment serves 'tiny-llama'", error.Message);
    }

    [Fact]
    public void A_sparsity_without_a_router_is_refused_naming_those_there_are()
    {
        var error = PrepareRefused(Parse("""{"model": "tiny-llama", "prompt": "x", "ftp": {"sparsity": 0.4}}"""));
        Assert.Equal(ErrorCodes.InvalidValue, error.Code);
        Assert.Equal("ftp.sparsity", error.Param);
        Assert.Equal("'ftp.sparsity' is 0.4, but this deployment has routers for sparsities 0.3, 0.5 only", error.Message);

        error = PrepareRefused(Parse("""{"model": "tiny-llama", "prompt": "x", "ftp": {"sparsity": 0.3}}"""), Model with { RouterSparsities = [] });
        Assert.Equal("'ftp.sparsity' is 0.3, but this deployment has no token-pruning router", error.Message);
    }

    [Fact]
    public void A_token_id_outside_the_vocabulary_is_refused_naming_its_index()
    {
        var error = PrepareRefused(Parse("""{"model": "tiny-llama", "prompt": [1, 2, 1000]}"""));
        Assert.Equal(ErrorCodes.InvalidValue, error.Code);
        Assert.Equal("'prompt[2]' must be a token id in [0, 1000), got 1000", error.Message);
    }

    [Fact]
    public void Prompt_and_max_tokens_beyond_the_context_are_refused_with_the_three_numbers()
    {
        // 1 BOS + 10 characters = 11 prompt tokens; 11 + 54 = 65 > 64.
        var error = PrepareRefused(Parse("""{"model": "tiny-llama", "prompt": "0123456789", "max_tokens": 54}"""));
        Assert.Equal(ErrorCodes.ContextLengthExceeded, error.Code);
        Assert.Equal("max_tokens", error.Param);
        Assert.Equal("this model's maximum context length is 64 tokens, but the prompt has 11 and 'max_tokens' asks for 54 more (65 in all)", error.Message);
        Assert.Equal(53, Prepare(Parse("""{"model": "tiny-llama", "prompt": "0123456789", "max_tokens": 53}""")).MaxTokens);
    }

    [Fact]
    public void A_prompt_that_fills_the_context_leaves_no_room_even_by_default()
    {
        string messages = $$"""[{"role": "user", "content": "{{new string('a', 60)}}"}]""";
        // BOS + "user: " + 60 + "\n" + "assistant: " = 79 tokens.
        var error = PrepareRefused(ChatBody($$"""{"model": "tiny-llama", "messages": {{messages}}}"""));
        Assert.Equal(ErrorCodes.ContextLengthExceeded, error.Code);
        Assert.Equal("messages", error.Param);
        Assert.Equal("this model's maximum context length is 64 tokens and the prompt has 79: no room is left to generate", error.Message);
    }

    [Fact]
    public void The_default_16_tokens_also_must_fit()
    {
        var error = PrepareRefused(Parse($$"""{"model": "tiny-llama", "prompt": "{{new string('a', 50)}}"}"""));
        Assert.Equal("this model's maximum context length is 64 tokens, but the prompt has 51 and 'max_tokens' asks for 16 more (67 in all)", error.Message);
    }

    [Fact]
    public void Max_tokens_not_positive_is_refused_even_when_the_request_was_built_by_hand()
    {
        var request = Parse("""{"model": "tiny-llama", "prompt": "x"}""") with { MaxTokens = 0 };
        var error = PrepareRefused(request);
        Assert.Equal(ErrorCodes.InvalidValue, error.Code);
        Assert.Equal("'max_tokens' must be a positive integer, got 0", error.Message);
    }

    [Fact]
    public void An_empty_prompt_is_refused()
    {
        var error = PrepareRefused(Parse("""{"model": "tiny-llama", "prompt": "x"}""") with { PromptText = "" });
        Assert.Equal("prompt", error.Param);
        Assert.Equal("'prompt' must be a non-empty string or a non-empty array of token ids", error.Message);

        error = PrepareRefused(Parse("""{"model": "tiny-llama", "prompt": "x"}"""), null, new NothingEncoder());
        Assert.Equal("'prompt' encodes to no tokens", error.Message);
        error = PrepareRefused(ChatBody("""{"model": "tiny-llama", "messages": [{"role": "user", "content": "x"}]}"""), null, new NothingEncoder());
        Assert.Equal("messages", error.Param);
        Assert.Equal("the chat template rendered 'messages' as empty text", error.Message);
    }

    [Fact]
    public void A_chat_template_failure_is_the_clients_error_with_the_templates_message()
    {
        var error = PrepareRefused(ChatBody("""{"model": "tiny-llama", "messages": [{"role": "fail", "content": "x"}]}"""));
        Assert.Equal(ErrorCodes.InvalidValue, error.Code);
        Assert.Equal("messages", error.Param);
        Assert.Equal("the chat template could not render 'messages': the template knows no role 'fail'", error.Message);
    }

    [Fact]
    public void Without_a_seed_each_request_draws_its_own()
    {
        var request = Parse("""{"model": "tiny-llama", "prompt": "x"}""");
        var seeds = Enumerable.Range(0, 8).Select(_ => Prepare(request).Sampling.Seed).ToHashSet();
        Assert.True(seeds.Count > 1, "eight unseeded requests all drew the same seed");
    }

    private static RequestException PrepareRefused(CompletionRequest request, ServedModel? model, IPromptEncoder encoder) =>
        Assert.Throws<RequestException>(() => PreparedRequest.Prepare(request, model ?? Model, encoder));

    /// <summary>An encoder whose text encodes to nothing and whose chat template renders nothing.</summary>
    private sealed class NothingEncoder : IPromptEncoder
    {
        public int[] Encode(string text) => [];
        public string RenderChat(System.Text.Json.JsonElement messages) => "";
    }
}
