using System.Buffers;
using System.Text.Json;

namespace FtpCluster.Compute.Serving;

/// <summary>
/// One line of a batch output (or errors) file, serialized once when made:
/// <c>{"id": "batch_req_…", "custom_id", "response": {"status_code": 200, "request_id": "req_…", "body": {…}}, "error": null}</c>
/// for an answered request, and
/// <c>{"id": "batch_req_…", "custom_id": … or null, "response": null, "error": {"code", "message", "line"}}</c>
/// for a failed one, whose <c>line</c> (the input line, as OpenAI's batch errors carry) lets a resumed run
/// recognise failures of lines that had no usable <c>custom_id</c>.
/// </summary>
public sealed class BatchOutputLine
{
    private BatchOutputLine(string? customId, int? inputLine, byte[] json)
    {
        CustomId = customId;
        InputLine = inputLine;
        Json = json;
    }

    public string? CustomId { get; }

    /// <summary>The input line of a failure; null for an answer.</summary>
    public int? InputLine { get; }

    public bool IsError => InputLine is not null;

    /// <summary>The line as compact UTF-8 JSON, without its newline.</summary>
    public ReadOnlyMemory<byte> Json { get; }

    public static BatchOutputLine Success(string customId, CompletionResponse body) => Success(customId, body.ToUtf8Json());

    /// <param name="body">The response body as UTF-8 JSON, as it came back from where the request was served.</param>
    public static BatchOutputLine Success(string customId, byte[] body) => Write(customId, null, json =>
    {
        json.WriteStartObject("response");
        json.WriteNumber("status_code", 200);
        json.WriteString("request_id", ServingIds.New("req_"));
        json.WritePropertyName("body");
        json.WriteRawValue(body);
        json.WriteEndObject();
        json.WriteNull("error");
    });

    /// <param name="inputLine">The input line the failure is of, from 1.</param>
    public static BatchOutputLine Failure(int inputLine, string? customId, string code, string message)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputLine, 1);
        return Write(customId, inputLine, json =>
        {
            json.WriteNull("response");
            json.WriteStartObject("error");
            json.WriteString("code", code);
            json.WriteString("message", message);
            json.WriteNumber("line", inputLine);
            json.WriteEndObject();
        });
    }

    public static BatchOutputLine Failure(BatchLineError error) => Failure(error.LineNumber, error.CustomId, error.Code, error.Message);

    private static BatchOutputLine Write(string? customId, int? inputLine, Action<Utf8JsonWriter> writeOutcome)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, ServingJson.WriterOptions))
        {
            json.WriteStartObject();
            json.WriteString("id", ServingIds.New("batch_req_"));
            if (customId is null) json.WriteNull("custom_id");
            else json.WriteString("custom_id", customId);
            writeOutcome(json);
            json.WriteEndObject();
        }
        return new BatchOutputLine(customId, inputLine, buffer.WrittenSpan.ToArray());
    }
}
