using System.Text.Json;
using static FtpCluster.Compute.Serving.RequestJson;

namespace FtpCluster.Compute.Serving;

/// <summary>
/// The body of one OpenAI completions or chat completions request, checked for form but not yet against the
/// deployment (that is <see cref="PreparedRequest.Prepare"/>). Defaults are OpenAI's. Fields this server does not
/// know (<c>frequency_penalty</c>, <c>logit_bias</c>, <c>user</c>, …) are ignored, as OpenAI-compatible servers do;
/// a field sent as JSON null counts as not sent. Besides OpenAI's fields, <c>"ftp": {"sparsity": s}</c> asks for
/// token pruning at sparsity s.
/// </summary>
public sealed record CompletionRequest
{
    public const int MaxStopStrings = 4;
    public const int MaxCompletionLogprobs = 5;
    public const int MaxChatTopLogprobs = 20;

    public required CompletionEndpoint Endpoint { get; init; }

    /// <summary>The model the client asked for, as sent.</summary>
    public required string Model { get; init; }

    /// <summary>A completion's prompt given as text; null when it came as token ids, and for chat.</summary>
    public string? PromptText { get; init; }

    /// <summary>A completion's prompt given as token ids (not yet checked against the vocabulary); null otherwise.</summary>
    public IReadOnlyList<int>? PromptIds { get; init; }

    /// <summary>A chat's <c>messages</c> array (checked for form, cloned from the body) for the chat template; null for completions.</summary>
    public JsonElement? Messages { get; init; }

    /// <summary><c>max_tokens</c> (or for chat <c>max_completion_tokens</c>, which wins when both are sent); null when absent.</summary>
    public int? MaxTokens { get; init; }

    public double Temperature { get; init; } = 1;
    public double TopP { get; init; } = 1;
    public int? Seed { get; init; }

    /// <summary>Up to <see cref="MaxStopStrings"/> non-empty strings; the answer ends before the first of them.</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];

    /// <summary>Null: no logprobs. Otherwise the logprob of each generated token and this many alternatives to it
    /// (completions' <c>logprobs: N</c>; chat's <c>logprobs: true</c> with <c>top_logprobs: N</c>, 0 when absent).</summary>
    public int? Logprobs { get; init; }

    /// <summary>The token-pruning sparsity asked for in <c>ftp.sparsity</c>, in [0, 1); null for none.</summary>
    public double? FtpSparsity { get; init; }

    public bool Stream { get; init; }

    /// <summary><c>stream_options.include_usage</c>: a streamed answer ends with a chunk carrying the usage.</summary>
    public bool IncludeUsage { get; init; }

    /// <summary>Reads a request body sent to <paramref name="endpoint"/>.</summary>
    /// <exception cref="RequestException">The first problem found, naming its field.</exception>
    public static CompletionRequest Parse(JsonElement body, CompletionEndpoint endpoint)
    {
        Object(body, "body");
        string model = NonEmptyString(Required(body, "model", "model"), "model");
        bool chat = endpoint == CompletionEndpoint.ChatCompletions;
        string? promptText = null;
        int[]? promptIds = null;
        JsonElement? messages = null;
        if (chat) messages = ReadMessages(Required(body, "messages", "messages")).Clone();
        else (promptText, promptIds) = ReadPrompt(Required(body, "prompt", "prompt"));

        string maxTokensName = chat && Optional(body, "max_completion_tokens") is not null ? "max_completion_tokens" : "max_tokens";
        if (Optional(body, "n") is { } n && Int(n, "n", "an integer") != 1)
            throw new RequestException(ErrorCodes.UnsupportedValue, "n", $"'n' must be 1 (this server makes one choice per request), got {Shown(n)}");

        bool stream = Optional(body, "stream") is { } streamValue && Bool(streamValue, "stream");
        bool includeUsage = false;
        if (Optional(body, "stream_options") is { } options)
        {
            if (!stream)
                throw new RequestException(ErrorCodes.InvalidValue, "stream_options", "'stream_options' is only allowed when 'stream' is true");
            includeUsage = Optional(Object(options, "stream_options"), "include_usage") is { } usage && Bool(usage, "stream_options.include_usage");
        }

        return new CompletionRequest
        {
            Endpoint = endpoint,
            Model = model,
            PromptText = promptText,
            PromptIds = promptIds,
            Messages = messages,
            MaxTokens = Optional(body, maxTokensName) is { } max ? Int(max, maxTokensName, "a positive integer", min: 1) : null,
            Temperature = Optional(body, "temperature") is { } t ? Number(t, "temperature", "a number in [0, 2]", x => x is >= 0 and <= 2) : 1,
            TopP = Optional(body, "top_p") is { } p ? Number(p, "top_p", "a number in (0, 1]", x => x is > 0 and <= 1) : 1,
            Seed = Optional(body, "seed") is { } seed ? Int(seed, "seed", "a 32-bit integer") : null,
            Stop = Optional(body, "stop") is { } stop ? ReadStop(stop) : [],
            Logprobs = chat ? ReadChatLogprobs(body) : ReadCompletionLogprobs(body),
            FtpSparsity = Optional(body, "ftp") is { } ftp
                ? Number(Required(Object(ftp, "ftp"), "sparsity", "ftp.sparsity"), "ftp.sparsity", "a number in [0, 1)", x => x is >= 0 and < 1)
                : null,
            Stream = stream,
            IncludeUsage = includeUsage,
        };
    }

    /// <summary>One prompt: a string or an array of token ids. OpenAI also takes several prompts in one request
    /// (an array of strings or of id arrays); here each request makes one answer, so those are refused.</summary>
    private static (string? Text, int[]? Ids) ReadPrompt(JsonElement prompt)
    {
        const string expected = "a non-empty string or a non-empty array of token ids";
        if (prompt.ValueKind == JsonValueKind.String)
            return prompt.GetString() is { Length: > 0 } text ? (text, null) : throw WrongValue("prompt", expected, prompt);
        if (prompt.ValueKind != JsonValueKind.Array) throw WrongType("prompt", expected, prompt);
        int length = prompt.GetArrayLength();
        if (length == 0)
            throw new RequestException(ErrorCodes.InvalidValue, "prompt", $"'prompt' must be {expected}, got an empty array");
        var first = prompt[0];
        if (first.ValueKind is JsonValueKind.String or JsonValueKind.Array)
            throw new RequestException(ErrorCodes.UnsupportedValue, "prompt",
                $"'prompt' must be one prompt ({expected}), got an array of {KindOf(first)}s: this server takes one prompt per request");
        var ids = new int[length];
        int i = 0;
        foreach (var id in prompt.EnumerateArray())
        {
            ids[i] = Int(id, $"prompt[{i}]", "a token id (an integer >= 0)", min: 0);
            i++;
        }
        return (null, ids);
    }

    private static JsonElement ReadMessages(JsonElement messages)
    {
        const string expected = "a non-empty array of messages";
        if (messages.ValueKind != JsonValueKind.Array) throw WrongType("messages", expected, messages);
        if (messages.GetArrayLength() == 0)
            throw new RequestException(ErrorCodes.InvalidValue, "messages", $"'messages' must be {expected}, got an empty array");
        int i = 0;
        foreach (var message in messages.EnumerateArray())
        {
            string path = $"messages[{i++}]";
            Object(message, path);
            String(Required(message, "role", $"{path}.role"), $"{path}.role");
            ReadContent(Required(message, "content", $"{path}.content"), $"{path}.content");
        }
        return messages;
    }

    private static void ReadContent(JsonElement content, string path)
    {
        if (content.ValueKind == JsonValueKind.String) return;
        if (content.ValueKind != JsonValueKind.Array) throw WrongType(path, "a string or an array of text parts", content);
        int i = 0;
        foreach (var part in content.EnumerateArray())
        {
            string partPath = $"{path}[{i++}]";
            Object(part, partPath);
            string type = String(Required(part, "type", $"{partPath}.type"), $"{partPath}.type");
            if (type != "text")
                throw new RequestException(ErrorCodes.UnsupportedValue, $"{partPath}.type",
                    $"'{partPath}.type' is \"{type}\": only \"text\" parts are supported");
            String(Required(part, "text", $"{partPath}.text"), $"{partPath}.text");
        }
    }

    private static string[] ReadStop(JsonElement stop)
    {
        string expected = $"a non-empty string or an array of at most {MaxStopStrings} non-empty strings";
        if (stop.ValueKind == JsonValueKind.String) return [NonEmptyString(stop, "stop")];
        if (stop.ValueKind != JsonValueKind.Array) throw WrongType("stop", expected, stop);
        int count = stop.GetArrayLength();
        if (count > MaxStopStrings)
            throw new RequestException(ErrorCodes.InvalidValue, "stop", $"'stop' must be {expected}, got {count} strings");
        return [.. stop.EnumerateArray().Select((s, i) => NonEmptyString(s, $"stop[{i}]"))];
    }

    /// <summary>Completions: <c>logprobs</c> is how many alternatives to list beside each token (0 lists none but
    /// still gives each token's own logprob).</summary>
    private static int? ReadCompletionLogprobs(JsonElement body) =>
        Optional(body, "logprobs") is { } logprobs
            ? Int(logprobs, "logprobs", $"an integer in [0, {MaxCompletionLogprobs}]", 0, MaxCompletionLogprobs)
            : null;

    /// <summary>Chat: <c>logprobs</c> switches them on, <c>top_logprobs</c> says how many alternatives.</summary>
    private static int? ReadChatLogprobs(JsonElement body)
    {
        bool on = Optional(body, "logprobs") is { } logprobs && Bool(logprobs, "logprobs");
        int? top = Optional(body, "top_logprobs") is { } t
            ? Int(t, "top_logprobs", $"an integer in [0, {MaxChatTopLogprobs}]", 0, MaxChatTopLogprobs)
            : null;
        if (top is not null && !on)
            throw new RequestException(ErrorCodes.InvalidValue, "top_logprobs", "'top_logprobs' is only allowed when 'logprobs' is true");
        return on ? top ?? 0 : null;
    }
}
