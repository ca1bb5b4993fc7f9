using System.Text.Json;

namespace FtpCluster.Compute.Models;

/// <summary>
/// JSON reading for model files (config.json, safetensors headers and indexes) whose every failure is a
/// <see cref="ModelFormatException"/> naming the file and, for syntax errors, the line and position.
/// </summary>
internal static class ModelJson
{
    /// <summary>The file parsed, refused unread when it is longer than <paramref name="maxBytes"/> (see <see cref="InputFileLimits"/>).</summary>
    /// <param name="what">The kind of file, for the size message: "config.json", "router artifact".</param>
    public static JsonDocument ReadFile(string path, long maxBytes, string what) =>
        Parse(path, InputFileLimits.ReadAllBytes(path, maxBytes, what), "file");

    /// <param name="what">What the bytes are, for the message: "file", "header".</param>
    public static JsonDocument Parse(string file, ReadOnlyMemory<byte> utf8, string what)
    {
        // The parser accepts bad UTF-8 inside strings and fails only when one is read, far from here.
        if (!System.Text.Unicode.Utf8.IsValid(utf8.Span))
            throw new ModelFormatException(file, null, $"{what} is not valid UTF-8 (at byte {InvalidUtf8Offset(utf8.Span)})");
        try
        {
            return JsonDocument.Parse(utf8);
        }
        catch (JsonException e)
        {
            // JsonException counts lines and bytes from 0; editors count from 1.
            throw new ModelFormatException(file, null,
                $"{what} is not valid JSON at line {e.LineNumber + 1}, position {e.BytePositionInLine + 1}: {Reason(e)}", e);
        }
    }

    /// <summary>The value of <paramref name="key"/>; a missing key is an error naming it.</summary>
    public static JsonElement Required(this JsonElement obj, string file, string key, string? tensor = null) =>
        obj.Optional(key) ?? throw new ModelFormatException(file, tensor, $"missing required key '{key}'");

    /// <summary>The value of <paramref name="key"/>, or null when it is absent or JSON null.</summary>
    public static JsonElement? Optional(this JsonElement obj, string key) =>
        obj.TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public static int AsInt(this JsonElement value, string file, string key, string? tensor = null) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n)
            ? n
            : throw new ModelFormatException(file, tensor, $"'{key}' must be an integer, got {Show(value)}");

    public static long AsLong(this JsonElement value, string file, string key, string? tensor = null) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long n)
            ? n
            : throw new ModelFormatException(file, tensor, $"'{key}' must be an integer, got {Show(value)}");

    public static double AsNumber(this JsonElement value, string file, string key, string? tensor = null) =>
        value.ValueKind == JsonValueKind.Number
            ? value.GetDouble()
            : throw new ModelFormatException(file, tensor, $"'{key}' must be a number, got {Show(value)}");

    public static bool AsBool(this JsonElement value, string file, string key, string? tensor = null) =>
        value.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? value.GetBoolean()
            : throw new ModelFormatException(file, tensor, $"'{key}' must be true or false, got {Show(value)}");

    public static string AsString(this JsonElement value, string file, string key, string? tensor = null) =>
        value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new ModelFormatException(file, tensor, $"'{key}' must be a string, got {Show(value)}");

    public static JsonElement AsObject(this JsonElement value, string file, string key, string? tensor = null) =>
        value.ValueKind == JsonValueKind.Object
            ? value
            : throw new ModelFormatException(file, tensor, $"'{key}' must be a JSON object, got {Show(value)}");

    public static JsonElement AsArray(this JsonElement value, string file, string key, string? tensor = null) =>
        value.ValueKind == JsonValueKind.Array
            ? value
            : throw new ModelFormatException(file, tensor, $"'{key}' must be a JSON array, got {Show(value)}");

    private static int InvalidUtf8Offset(ReadOnlySpan<byte> utf8)
    {
        System.Text.Unicode.Utf8.ToUtf16(utf8, new char[utf8.Length], out int valid, out _, replaceInvalidSequences: false);
        return valid;
    }

    private static string Show(JsonElement value)
    {
        string text = value.GetRawText();
        return text.Length <= 60 ? text : text[..57] + "...";
    }

    /// <summary>The parser's own sentence without its 0-based "LineNumber: … | BytePositionInLine: …" suffix.</summary>
    private static string Reason(JsonException e)
    {
        int suffix = e.Message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return suffix < 0 ? e.Message : e.Message[..suffix];
    }
}
