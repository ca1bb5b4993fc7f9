using System.Globalization;
using System.Security.Cryptography;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Serving;

/// <summary>
/// A request checked against the deployment and ready to generate: what the cluster needs and nothing of JSON.
/// </summary>
/// <param name="Request">The request as parsed, for the response (its endpoint, the model name the client used).</param>
/// <param name="PromptIds">The prompt's token ids, each in [0, vocabulary size).</param>
/// <param name="MaxTokens">How many tokens to generate at most: the request's, or when it gives none
/// <see cref="DefaultCompletionMaxTokens"/> for completions (as OpenAI) and the rest of the context for chat (as vLLM).</param>
/// <param name="Sampling">The request's temperature and top-p; its seed, or a random one when it gives none.</param>
/// <param name="Logprobs">Null: none; otherwise the number of alternatives to list beside each token's logprob.</param>
/// <param name="RouterIndex">Which of <see cref="ServedModel.RouterSparsities"/> prunes tokens; null for none.</param>
public sealed record PreparedRequest(
    CompletionRequest Request, int[] PromptIds, int MaxTokens, SamplingOptions Sampling,
    IReadOnlyList<string> Stop, int? Logprobs, int? RouterIndex)
{
    public const int DefaultCompletionMaxTokens = 16;

    /// <exception cref="RequestException">The model is not this deployment's, no router has the sparsity asked for,
    /// the prompt is empty or has ids outside the vocabulary, the chat template fails, or the prompt and the tokens
    /// to generate do not fit in the context.</exception>
    public static PreparedRequest Prepare(CompletionRequest request, ServedModel model, IPromptEncoder encoder)
    {
        if (!model.Answers(request.Model))
        {
            string aliases = model.Aliases.Count == 0 ? "" : $" (also called {string.Join(", ", model.Aliases.Select(a => $"'{a}'"))})";
            throw new RequestException(ErrorCodes.ModelNotFound, "model",
                $"the model '{request.Model}' is not served here: this deployment serves '{model.Name}'{aliases}");
        }
        int? router = request.FtpSparsity is { } sparsity ? RouterFor(model, sparsity) : null;
        if (request.MaxTokens is <= 0)
            throw new RequestException(ErrorCodes.InvalidValue, "max_tokens", $"'max_tokens' must be a positive integer, got {request.MaxTokens}");

        var (prompt, promptParam) = request.Endpoint == CompletionEndpoint.ChatCompletions
            ? (EncodeChat(request, encoder), "messages")
            : (EncodeCompletion(request, model, encoder), "prompt");
        if (prompt.Length == 0)
            throw new RequestException(ErrorCodes.InvalidValue, promptParam, $"'{promptParam}' encodes to no tokens");

        int room = model.ContextLength - prompt.Length;
        if (room <= 0)
            throw new RequestException(ErrorCodes.ContextLengthExceeded, promptParam,
                $"this model's maximum context length is {model.ContextLength} tokens and the prompt has {prompt.Length}: no room is left to generate");
        int maxTokens = request.MaxTokens ?? (request.Endpoint == CompletionEndpoint.ChatCompletions ? room : DefaultCompletionMaxTokens);
        if (maxTokens > room)
            throw new RequestException(ErrorCodes.ContextLengthExceeded, "max_tokens",
                $"this model's maximum context length is {model.ContextLength} tokens, but the prompt has {prompt.Length} and "
                + $"'max_tokens' asks for {maxTokens} more ({(long)prompt.Length + maxTokens} in all)");

        var sampling = new SamplingOptions
        {
            Temperature = (float)request.Temperature,
            TopP = (float)request.TopP,
            Seed = request.Seed ?? RandomNumberGenerator.GetInt32(int.MaxValue),
        };
        return new PreparedRequest(request, prompt, maxTokens, sampling, request.Stop, request.Logprobs, router);
    }

    private static int RouterFor(ServedModel model, double sparsity)
    {
        if (model.RouterFor(sparsity) is { } index) return index;
        string shown = sparsity.ToString(CultureInfo.InvariantCulture);
        throw new RequestException(ErrorCodes.InvalidValue, "ftp.sparsity", model.RouterSparsities.Count == 0
            ? $"'ftp.sparsity' is {shown}, but this deployment has no token-pruning router"
            : $"'ftp.sparsity' is {shown}, but this deployment has routers for sparsities "
              + string.Join(", ", model.RouterSparsities.Select(s => s.ToString(CultureInfo.InvariantCulture))) + " only");
    }

    private static int[] EncodeCompletion(CompletionRequest request, ServedModel model, IPromptEncoder encoder)
    {
        if (request.PromptIds is { } ids)
        {
            for (int i = 0; i < ids.Count; i++)
                if (ids[i] < 0 || ids[i] >= model.VocabSize)
                    throw new RequestException(ErrorCodes.InvalidValue, "prompt",
                        $"'prompt[{i}]' must be a token id in [0, {model.VocabSize}), got {ids[i]}");
            return [.. ids];
        }
        if (string.IsNullOrEmpty(request.PromptText))
            throw new RequestException(ErrorCodes.InvalidValue, "prompt", "'prompt' must be a non-empty string or a non-empty array of token ids");
        return encoder.Encode(request.PromptText);
    }

    private static int[] EncodeChat(CompletionRequest request, IPromptEncoder encoder)
    {
        var messages = request.Messages
            ?? throw new RequestException(ErrorCodes.MissingRequiredParameter, "messages", "'messages' is required");
        string text;
        try
        {
            text = encoder.RenderChat(messages);
        }
        catch (Exception e) when (e is not RequestException)
        {
            throw new RequestException(ErrorCodes.InvalidValue, "messages", $"the chat template could not render 'messages': {e.Message}");
        }
        if (text.Length == 0)
            throw new RequestException(ErrorCodes.InvalidValue, "messages", "the chat template rendered 'messages' as empty text");
        return encoder.Encode(text);
    }
}
