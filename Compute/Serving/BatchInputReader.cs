using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using static FtpCluster.Compute.Serving.RequestJson;

namespace FtpCluster.Compute.Serving;

/// <summary>One non-blank line of a batch input file: a request to run, or why it cannot be run.</summary>
public abstract record BatchInputEntry(int LineNumber);

/// <summary>A line whose request is well formed (not yet checked against the deployment: that is <see cref="PreparedRequest.Prepare"/>).</summary>
/// <param name="Body">The request body's JSON as the line gave it: what travels to the cluster, which parses it again
/// where the request is served (one implementation of the request, wherever it comes from).</param>
public sealed record BatchLine(int LineNumber, string CustomId, CompletionEndpoint Endpoint, CompletionRequest Request, string Body) : BatchInputEntry(LineNumber);

/// <summary>A line that cannot be run. <paramref name="CustomId"/> is the line's when it has a usable one (null for a
/// duplicate, so that the error line written for it is not taken for the first line's result); the message starts
/// with the file and line, e.g. <c>requests.jsonl line 7: 'custom_id' must be a string, got number</c>.</summary>
public sealed record BatchLineError(int LineNumber, string? CustomId, string Code, string Message) : BatchInputEntry(LineNumber);

/// <summary>
/// Reads a batch input file in OpenAI's format, one request a line:
/// <c>{"custom_id": "…", "method": "POST", "url": "/v1/chat/completions", "body": {…}}</c>.
/// The stream is read once, a line at a time, holding at most <see cref="MaxLineBytes"/> of one line: a longer line,
/// a line that is not UTF-8 or not such an object, a <c>custom_id</c> used before, a body
/// <see cref="CompletionRequest.Parse"/> refuses or one asking to stream each make a <see cref="BatchLineError"/>,
/// and reading goes on at the next line. Blank lines are skipped (but counted in line numbers); a UTF-8 byte order
/// mark at the start is skipped. Every non-blank line counts toward <c>maxRequests</c> (OpenAI's 50,000 per file
/// by default); each line past it is a <see cref="ErrorCodes.TooManyRequests"/> error and is not parsed.
/// </summary>
public sealed class BatchInputReader
{
    public const int MaxLineBytes = 1 << 20;
    public const int DefaultMaxRequests = 50_000;

    private static readonly JsonDocumentOptions JsonOptions = new() { AllowDuplicateProperties = false };
    private static ReadOnlySpan<byte> ByteOrderMark => [0xEF, 0xBB, 0xBF];

    private readonly Stream _input;
    private readonly int _maxRequests;
    private bool _started;

    /// <param name="sourceName">How messages name the input, usually its path as the user gave it.</param>
    public BatchInputReader(Stream input, string sourceName, int maxRequests = DefaultMaxRequests)
    {
        if (maxRequests < 1) throw new ArgumentOutOfRangeException(nameof(maxRequests), maxRequests, "the limit on requests must be at least 1");
        _input = input;
        SourceName = sourceName;
        _maxRequests = maxRequests;
    }

    public string SourceName { get; }

    /// <summary>Each entry of the file at <paramref name="path"/>, opened when enumeration starts and closed when it ends.</summary>
    public static IEnumerable<BatchInputEntry> ReadFile(string path, int maxRequests = DefaultMaxRequests)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        foreach (var entry in new BatchInputReader(stream, path, maxRequests).Read()) yield return entry;
    }

    /// <summary>The entries in line order. Enumerate once: the stream is read as it goes.</summary>
    public IEnumerable<BatchInputEntry> Read()
    {
        if (_started) throw new InvalidOperationException($"{SourceName} has already been read: a batch input stream is read once");
        _started = true;
        return ReadLines();
    }

    /// <summary>The error to write for a line whose request <see cref="PreparedRequest.Prepare"/> refused, its message naming the line.</summary>
    public BatchLineError ErrorFor(BatchLine line, RequestException error) =>
        new(line.LineNumber, line.CustomId, error.Code, $"{Where(line.LineNumber)}: {error.Message}");

    private IEnumerable<BatchInputEntry> ReadLines()
    {
        var lines = new ByteLineReader(_input, MaxLineBytes);
        var firstLineOf = new Dictionary<string, int>(StringComparer.Ordinal);
        int requests = 0;
        while (lines.ReadLine())
        {
            var content = lines.Content;
            if (lines.Number == 1 && content.Span.StartsWith(ByteOrderMark)) content = content[ByteOrderMark.Length..];
            if (!lines.TooLong && IsBlank(content.Span)) continue;

            if (++requests > _maxRequests)
                yield return Error(lines.Number, null, ErrorCodes.TooManyRequests,
                    $"past the limit of {_maxRequests} requests per file; the line is not run");
            else if (lines.TooLong)
                yield return Error(lines.Number, null, ErrorCodes.LineTooLong,
                    $"the line has {lines.Length} bytes, over the limit of {MaxLineBytes} (1 MiB) per request");
            else
                yield return ReadLine(lines.Number, content, firstLineOf);
        }
    }

    private BatchInputEntry ReadLine(int number, ReadOnlyMemory<byte> content, Dictionary<string, int> firstLineOf)
    {
        if (!Utf8.IsValid(content.Span))
            return Error(number, null, ErrorCodes.InvalidEncoding, $"not valid UTF-8: bad byte at offset {InvalidUtf8Offset(content.Span)} of the line");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(content, JsonOptions);
        }
        catch (JsonException e)
        {
            return Error(number, null, ErrorCodes.InvalidJsonLine, $"not valid JSON at byte {e.BytePositionInLine} of the line: {WithoutPosition(e.Message)}");
        }

        using (document)
        {
            var line = document.RootElement;
            if (line.ValueKind != JsonValueKind.Object)
                return Error(number, null, ErrorCodes.InvalidType, $"the line must be a JSON object, got {KindOf(line)}");

            string customId;
            try
            {
                customId = NonEmptyString(Required(line, "custom_id", "custom_id"), "custom_id");
            }
            catch (RequestException e)
            {
                return Error(number, null, e.Code, e.Message);
            }
            if (!firstLineOf.TryAdd(customId, number))
                return Error(number, null, ErrorCodes.DuplicateCustomId,
                    $"'custom_id' \"{customId}\" is already the id of line {firstLineOf[customId]}; that line is run and this one is not");

            try
            {
                var endpoint = ReadEndpoint(line);
                return new BatchLine(number, customId, endpoint, ReadBody(line, endpoint), line.GetProperty("body").GetRawText());
            }
            catch (RequestException e)
            {
                return Error(number, customId, e.Code, e.Message);
            }
        }
    }

    private static CompletionEndpoint ReadEndpoint(JsonElement line)
    {
        var method = Required(line, "method", "method");
        if (String(method, "method") != "POST") throw WrongValue("method", "\"POST\"", method);
        var url = Required(line, "url", "url");
        return CompletionEndpoints.TryParseUrl(String(url, "url"), out var endpoint) ? endpoint
            : throw WrongValue("url", $"\"{CompletionEndpoints.CompletionsUrl}\" or \"{CompletionEndpoints.ChatCompletionsUrl}\"", url);
    }

    private static CompletionRequest ReadBody(JsonElement line, CompletionEndpoint endpoint)
    {
        var request = CompletionRequest.Parse(Object(Required(line, "body", "body"), "body"), endpoint);
        return request.Stream
            ? throw new RequestException(ErrorCodes.UnsupportedValue, "stream", "'body.stream' is true, but a batch cannot stream: leave it out or set it to false")
            : request;
    }

    private BatchLineError Error(int number, string? customId, string code, string message) =>
        new(number, customId, code, $"{Where(number)}: {message}");

    private string Where(int number) => $"{SourceName} line {number}";

    private static bool IsBlank(ReadOnlySpan<byte> line) => line.IndexOfAnyExcept(" \t\r"u8) < 0;

    private static int InvalidUtf8Offset(ReadOnlySpan<byte> bytes)
    {
        int offset = 0;
        while (Rune.DecodeFromUtf8(bytes[offset..], out _, out int consumed) == System.Buffers.OperationStatus.Done) offset += consumed;
        return offset;
    }

    /// <summary>The JSON reader's message without its "LineNumber: 0 | BytePositionInLine: n." tail, which
    /// counts within the line and would be mistaken for the file's line.</summary>
    private static string WithoutPosition(string message)
    {
        int tail = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return tail < 0 ? message : message[..tail];
    }
}
