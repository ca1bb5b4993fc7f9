using System.Buffers;
using System.Text.Json;

namespace FtpCluster.Compute.Serving;

/// <summary>
/// The JSON of a streamed answer's server-sent events, as OpenAI sends them, and their framing. A chat answer is
/// <c>chat.completion.chunk</c>s whose one choice carries a <c>delta</c> (the assistant's role on the first, then
/// content pieces); a completion is <c>text_completion</c>s whose one choice carries a <c>text</c> piece. The last
/// choice chunk names the finish reason; with <c>stream_options.include_usage</c> a chunk with no choices and the
/// usage follows; <see cref="Done"/> ends the stream. All chunks of one answer share its id, created time and model.
/// Every body is compact UTF-8 JSON without the event framing, which <see cref="WriteEvent"/> adds.
/// </summary>
public static class CompletionChunks
{
    /// <summary>The event that ends a stream: <c>data: [DONE]</c> and a blank line.</summary>
    public static ReadOnlySpan<byte> Done => "data: [DONE]\n\n"u8;

    /// <summary>A chunk carrying the next piece of the answer.</summary>
    /// <param name="text">The piece, possibly empty.</param>
    /// <param name="first">Whether this is the answer's first chunk, which for chat names the assistant's role.</param>
    /// <param name="finishReason">Null while the answer goes on; <see cref="FinishReasons.Stop"/> or
    /// <see cref="FinishReasons.Length"/> on its last choice chunk.</param>
    /// <param name="logprobs">The chunk's <c>logprobs</c> in the endpoint's form (as the whole answer's body writes them);
    /// null for <c>"logprobs": null</c>.</param>
    public static byte[] Delta(CompletionEndpoint endpoint, string id, long created, string model, string text, bool first, string? finishReason,
        JsonElement? logprobs = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (finishReason is not (null or FinishReasons.Stop or FinishReasons.Length))
            throw new ArgumentException($"finish reason \"{finishReason}\" is none of null, \"{FinishReasons.Stop}\" and \"{FinishReasons.Length}\"", nameof(finishReason));
        return Write(endpoint, id, created, model, json =>
        {
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            if (endpoint == CompletionEndpoint.ChatCompletions)
            {
                json.WriteStartObject("delta");
                if (first) json.WriteString("role", "assistant");
                // OpenAI's closing chunk carries an empty delta rather than empty content.
                if (first || text.Length > 0 || finishReason is null) json.WriteString("content", text);
                json.WriteEndObject();
            }
            else
            {
                json.WriteString("text", text);
            }
            json.WritePropertyName("logprobs");
            if (logprobs is { ValueKind: not JsonValueKind.Null } given) given.WriteTo(json);
            else json.WriteNullValue();
            if (finishReason is null) json.WriteNull("finish_reason");
            else json.WriteString("finish_reason", finishReason);
            json.WriteEndObject();
            json.WriteEndArray();
        });
    }

    /// <summary>The <c>include_usage</c> chunk: no choices, and the usage as the non-streamed body has it.</summary>
    public static byte[] Usage(CompletionEndpoint endpoint, string id, long created, string model, int promptTokens, int completionTokens, FtpUsage ftp)
    {
        ArgumentNullException.ThrowIfNull(ftp);
        return Write(endpoint, id, created, model, json =>
        {
            json.WriteStartArray("choices");
            json.WriteEndArray();
            CompletionResponse.WriteUsage(json, promptTokens, completionTokens, ftp);
        });
    }

    /// <summary>OpenAI's error object, <c>{"error": {"message", "type", "param", "code"}}</c>, as a failed stream's
    /// last event and as the body of every error response.</summary>
    /// <param name="type">The kind of error, e.g. <c>invalid_request_error</c>.</param>
    /// <param name="param">The request field at fault; null when no one field is.</param>
    /// <param name="code">A specific code such as one of <see cref="ErrorCodes"/>; null when there is none.</param>
    public static byte[] Error(string message, string type, string? param, string? code)
    {
        ArgumentException.ThrowIfNullOrEmpty(message);
        ArgumentException.ThrowIfNullOrEmpty(type);
        return WriteJson(json =>
        {
            json.WriteStartObject();
            json.WriteStartObject("error");
            json.WriteString("message", message);
            json.WriteString("type", type);
            WriteStringOrNull(json, "param", param);
            WriteStringOrNull(json, "code", code);
            json.WriteEndObject();
            json.WriteEndObject();
        });
    }

    /// <summary>Writes one server-sent event: <c>data: </c>, the JSON, and a blank line.</summary>
    /// <param name="json">One line of JSON; a line break in it would end the event early.</param>
    public static void WriteEvent(IBufferWriter<byte> output, ReadOnlySpan<byte> json)
    {
        ArgumentNullException.ThrowIfNull(output);
        int lineBreak = json.IndexOfAny((byte)'\n', (byte)'\r');
        if (lineBreak >= 0)
            throw new ArgumentException($"an event's JSON must be one line, but it has a line break at byte {lineBreak} of {json.Length}", nameof(json));
        output.Write("data: "u8);
        output.Write(json);
        output.Write("\n\n"u8);
    }

    /// <summary>The envelope every chunk has (<c>id</c>, <c>object</c>, <c>created</c>, <c>model</c>) around what
    /// <paramref name="writeBody"/> writes.</summary>
    private static byte[] Write(CompletionEndpoint endpoint, string id, long created, string model, Action<Utf8JsonWriter> writeBody)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentNullException.ThrowIfNull(model);
        string objectType = endpoint switch
        {
            CompletionEndpoint.Completions => "text_completion",
            CompletionEndpoint.ChatCompletions => "chat.completion.chunk",
            _ => throw new ArgumentOutOfRangeException(nameof(endpoint), endpoint, "not a completion endpoint"),
        };
        return WriteJson(json =>
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("object", objectType);
            json.WriteNumber("created", created);
            json.WriteString("model", model);
            writeBody(json);
            json.WriteEndObject();
        });
    }

    private static byte[] WriteJson(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, ServingJson.WriterOptions)) write(json);
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null) json.WriteNull(name);
        else json.WriteString(name, value);
    }
}
