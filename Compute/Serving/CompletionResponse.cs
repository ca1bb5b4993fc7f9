using System.Buffers;
using System.Text;
using System.Text.Json;

namespace FtpCluster.Compute.Serving;

/// <summary>
/// The OpenAI response body for one request: a <c>text_completion</c> or a <c>chat.completion</c> with one choice.
/// The text is the generated tokens decoded together (so a character split across tokens comes out whole), cut
/// before the first stop string, which makes the finish reason "stop". <c>usage.completion_tokens</c> counts every
/// token generated; logprobs list the tokens that begin before the cut. <c>usage.ftp</c> carries the token-pruning
/// counts beside OpenAI's fields.
/// </summary>
public sealed class CompletionResponse
{
    /// <summary>What a logprob that is not a finite number (an impossible token's) is written as, as OpenAI does.</summary>
    public const float UnrepresentableLogprob = -9999f;

    private readonly IReadOnlyList<LoggedToken>? _logprobs;

    private CompletionResponse(CompletionEndpoint endpoint, string id, long created, string model, string text,
        string finishReason, int promptTokens, int completionTokens, FtpUsage ftp, IReadOnlyList<LoggedToken>? logprobs)
    {
        Endpoint = endpoint;
        Id = id;
        Created = created;
        Model = model;
        Text = text;
        FinishReason = finishReason;
        PromptTokens = promptTokens;
        CompletionTokens = completionTokens;
        Ftp = ftp;
        _logprobs = logprobs;
    }

    public CompletionEndpoint Endpoint { get; }

    /// <summary><c>cmpl-…</c> or <c>chatcmpl-…</c>, random.</summary>
    public string Id { get; }

    /// <summary>Unix seconds.</summary>
    public long Created { get; }

    /// <summary>The model as the request named it.</summary>
    public string Model { get; }

    public string Text { get; }
    public string FinishReason { get; }
    public int PromptTokens { get; }
    public int CompletionTokens { get; }
    public FtpUsage Ftp { get; }

    /// <param name="decode">The text of a sequence of token ids, decoded together.</param>
    /// <param name="tokenBytes">The bytes of one token's text, for logprobs (a token may hold part of a character).</param>
    /// <param name="clock">Gives <see cref="Created"/>; the system clock when null.</param>
    public static CompletionResponse Create(PreparedRequest request, CompletionOutcome outcome,
        Func<int[], string> decode, Func<int, byte[]> tokenBytes, TimeProvider? clock = null)
    {
        if (outcome.FinishReason is not (FinishReasons.Stop or FinishReasons.Length))
            throw new ArgumentException($"finish reason \"{outcome.FinishReason}\" is neither \"{FinishReasons.Stop}\" nor \"{FinishReasons.Length}\"", nameof(outcome));
        var ids = outcome.GeneratedIds;
        string text = decode(ids);
        string finishReason = outcome.FinishReason;
        int cut = new StopStringMatcher(request.Stop).FindFirst(text);
        if (cut >= 0)
        {
            text = text[..cut];
            finishReason = FinishReasons.Stop;
        }
        var logprobs = request.Logprobs is { } alternatives
            ? LogTokens(outcome, alternatives, cut, decode, tokenBytes)
            : null;
        bool chat = request.Request.Endpoint == CompletionEndpoint.ChatCompletions;
        return new CompletionResponse(request.Request.Endpoint, ServingIds.New(chat ? "chatcmpl-" : "cmpl-"),
            (clock ?? TimeProvider.System).GetUtcNow().ToUnixTimeSeconds(), request.Request.Model, text, finishReason,
            outcome.PromptTokens, ids.Length, outcome.Ftp, logprobs);
    }

    /// <summary>The body as compact UTF-8 JSON.</summary>
    public byte[] ToUtf8Json()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, ServingJson.WriterOptions)) WriteTo(json);
        return buffer.WrittenSpan.ToArray();
    }

    public void WriteTo(Utf8JsonWriter json)
    {
        bool chat = Endpoint == CompletionEndpoint.ChatCompletions;
        json.WriteStartObject();
        json.WriteString("id", Id);
        json.WriteString("object", chat ? "chat.completion" : "text_completion");
        json.WriteNumber("created", Created);
        json.WriteString("model", Model);
        json.WriteStartArray("choices");
        json.WriteStartObject();
        json.WriteNumber("index", 0);
        if (chat)
        {
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            json.WriteString("content", Text);
            json.WriteEndObject();
        }
        else
        {
            json.WriteString("text", Text);
        }
        json.WritePropertyName("logprobs");
        if (_logprobs is null) json.WriteNullValue();
        else if (chat) WriteChatLogprobs(json, _logprobs);
        else WriteCompletionLogprobs(json, _logprobs);
        json.WriteString("finish_reason", FinishReason);
        json.WriteEndObject();
        json.WriteEndArray();
        WriteUsage(json, PromptTokens, CompletionTokens, Ftp);
        json.WriteEndObject();
    }

    /// <summary>The <c>usage</c> property, as the body and a streamed answer's usage chunk both carry it.</summary>
    internal static void WriteUsage(Utf8JsonWriter json, int promptTokens, int completionTokens, FtpUsage ftp)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", promptTokens);
        json.WriteNumber("completion_tokens", completionTokens);
        json.WriteNumber("total_tokens", (long)promptTokens + completionTokens);
        json.WriteStartObject("ftp");
        json.WriteNumber("tokens_computed", ftp.TokensComputed);
        json.WriteNumber("tokens_skipped", ftp.TokensSkipped);
        json.WriteNumber("wire_bytes", ftp.WireBytes);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Chat's form: <c>{"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}</c>.</summary>
    private static void WriteChatLogprobs(Utf8JsonWriter json, IReadOnlyList<LoggedToken> tokens)
    {
        json.WriteStartObject();
        json.WriteStartArray("content");
        foreach (var token in tokens)
        {
            json.WriteStartObject();
            WriteTokenFields(json, token.Token);
            json.WriteStartArray("top_logprobs");
            foreach (var alternative in token.Top)
            {
                json.WriteStartObject();
                WriteTokenFields(json, alternative);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteTokenFields(Utf8JsonWriter json, TokenText token)
    {
        json.WriteString("token", token.Text);
        json.WriteNumber("logprob", token.Logprob);
        json.WriteStartArray("bytes");
        foreach (byte b in token.Bytes) json.WriteNumberValue(b);
        json.WriteEndArray();
    }

    /// <summary>Completions' form: parallel arrays <c>tokens</c>, <c>token_logprobs</c>, <c>top_logprobs</c> (an object
    /// of token text to logprob per position; where two alternatives have the same text the first, likelier, is kept)
    /// and <c>text_offset</c> (where each token begins in the text).</summary>
    private static void WriteCompletionLogprobs(Utf8JsonWriter json, IReadOnlyList<LoggedToken> tokens)
    {
        json.WriteStartObject();
        json.WriteStartArray("tokens");
        foreach (var token in tokens) json.WriteStringValue(token.Token.Text);
        json.WriteEndArray();
        json.WriteStartArray("token_logprobs");
        foreach (var token in tokens) json.WriteNumberValue(token.Token.Logprob);
        json.WriteEndArray();
        json.WriteStartArray("top_logprobs");
        var written = new HashSet<string>(StringComparer.Ordinal);
        foreach (var token in tokens)
        {
            written.Clear();
            json.WriteStartObject();
            foreach (var alternative in token.Top)
                if (written.Add(alternative.Text)) json.WriteNumber(alternative.Text, alternative.Logprob);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("text_offset");
        foreach (var token in tokens) json.WriteNumberValue(token.TextOffset);
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>The logprobs of the tokens that begin before <paramref name="cut"/> (all of them when it is -1). A
    /// token's offset is the length of the text of the tokens before it, decoded together as the answer's text is.</summary>
    private static List<LoggedToken> LogTokens(CompletionOutcome outcome, int alternatives, int cut,
        Func<int[], string> decode, Func<int, byte[]> tokenBytes)
    {
        var ids = outcome.GeneratedIds;
        var logprobs = outcome.Logprobs
            ?? throw new ArgumentException("the request asked for logprobs but the outcome has none", nameof(outcome));
        if (logprobs.Length != ids.Length)
            throw new ArgumentException($"the outcome has {logprobs.Length} logprobs for {ids.Length} generated tokens", nameof(outcome));

        var logged = new List<LoggedToken>(ids.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            var entry = logprobs[i];
            if (entry.Token != ids[i])
                throw new ArgumentException($"logprob {i} is of token {entry.Token}, but generated token {i} is {ids[i]}", nameof(outcome));
            int offset = i == 0 ? 0 : decode(ids[..i]).Length;
            if (cut >= 0 && offset >= cut) break;
            logged.Add(new LoggedToken(
                Describe(entry.Token, entry.Logprob, tokenBytes), offset,
                [.. entry.Top.Take(alternatives).Select(a => Describe(a.Token, a.Logprob, tokenBytes))]));
        }
        return logged;
    }

    /// <summary>A token's text is its bytes as UTF-8; an incomplete character shows as U+FFFD, and <c>bytes</c> keeps it exact.</summary>
    private static TokenText Describe(int token, float logprob, Func<int, byte[]> tokenBytes)
    {
        byte[] bytes = tokenBytes(token);
        return new TokenText(Encoding.UTF8.GetString(bytes), float.IsFinite(logprob) ? logprob : UnrepresentableLogprob, bytes);
    }

    private sealed record TokenText(string Text, float Logprob, byte[] Bytes);

    private sealed record LoggedToken(TokenText Token, int TextOffset, TokenText[] Top);
}
