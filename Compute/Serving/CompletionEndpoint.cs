namespace FtpCluster.Compute.Serving;

/// <summary>The two OpenAI endpoints a request body can be for; they differ in how the prompt and the answer look.</summary>
public enum CompletionEndpoint
{
    /// <summary><c>/v1/completions</c>: a text (or token id) prompt, a text answer.</summary>
    Completions,

    /// <summary><c>/v1/chat/completions</c>: a list of messages, an assistant message as the answer.</summary>
    ChatCompletions,
}

public static class CompletionEndpoints
{
    public const string CompletionsUrl = "/v1/completions";
    public const string ChatCompletionsUrl = "/v1/chat/completions";

    public static string Url(this CompletionEndpoint endpoint) => endpoint switch
    {
        CompletionEndpoint.Completions => CompletionsUrl,
        CompletionEndpoint.ChatCompletions => ChatCompletionsUrl,
        _ => throw new ArgumentOutOfRangeException(nameof(endpoint), endpoint, "not a completion endpoint"),
    };

    /// <summary>The endpoint of a URL path exactly as OpenAI spells it; false for any other path.</summary>
    public static bool TryParseUrl(string url, out CompletionEndpoint endpoint)
    {
        switch (url)
        {
            case CompletionsUrl: endpoint = CompletionEndpoint.Completions; return true;
            case ChatCompletionsUrl: endpoint = CompletionEndpoint.ChatCompletions; return true;
            default: endpoint = default; return false;
        }
    }
}
