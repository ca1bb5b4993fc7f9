using System.Text.Json;

namespace FtpCluster.Compute.Serving;

/// <summary>
/// Reads the fields of a request body, refusing each problem with a <see cref="RequestException"/> whose message
/// has one shape: <c>'path' must be EXPECTED, got FOUND</c>. FOUND is the JSON type when the type is wrong
/// (<c>got number</c>) and the value when the type is right but the value is not (<c>got -3</c>).
/// </summary>
internal static class RequestJson
{
    /// <summary>The value of a field, or null when it is absent or JSON null: clients send null for "not given".</summary>
    public static JsonElement? Optional(JsonElement body, string name) =>
        body.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public static JsonElement Required(JsonElement body, string name, string path) =>
        Optional(body, name) ?? throw new RequestException(ErrorCodes.MissingRequiredParameter, path, $"'{path}' is required");

    public static RequestException WrongType(string path, string expected, JsonElement found) =>
        new(ErrorCodes.InvalidType, path, $"'{path}' must be {expected}, got {KindOf(found)}");

    public static RequestException WrongValue(string path, string expected, JsonElement found) =>
        new(ErrorCodes.InvalidValue, path, $"'{path}' must be {expected}, got {Shown(found)}");

    public static JsonElement Object(JsonElement value, string path) =>
        value.ValueKind == JsonValueKind.Object ? value : throw WrongType(path, "an object", value);

    public static string String(JsonElement value, string path) =>
        value.ValueKind == JsonValueKind.String ? value.GetString()! : throw WrongType(path, "a string", value);

    public static string NonEmptyString(JsonElement value, string path)
    {
        string text = String(value, path);
        return text.Length > 0 ? text : throw WrongValue(path, "a non-empty string", value);
    }

    public static bool Bool(JsonElement value, string path) => value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw WrongType(path, "a boolean", value),
    };

    /// <param name="expected">What the message says is expected, e.g. "a positive integer" or "an integer in [0, 5]".</param>
    public static int Int(JsonElement value, string path, string expected, int min = int.MinValue, int max = int.MaxValue)
    {
        if (value.ValueKind != JsonValueKind.Number) throw WrongType(path, expected, value);
        return value.TryGetInt32(out int number) && number >= min && number <= max ? number : throw WrongValue(path, expected, value);
    }

    /// <param name="inRange">Whether a number is accepted; NaN and infinities never reach it (JSON has none).</param>
    public static double Number(JsonElement value, string path, string expected, Func<double, bool> inRange)
    {
        if (value.ValueKind != JsonValueKind.Number) throw WrongType(path, expected, value);
        return value.TryGetDouble(out double number) && double.IsFinite(number) && inRange(number)
            ? number : throw WrongValue(path, expected, value);
    }

    public static string KindOf(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    /// <summary>A value as a message shows it: numbers and literals as written, strings quoted and cut short.</summary>
    public static string Shown(JsonElement value)
    {
        const int longest = 60;
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString()! is var text && text.Length > longest ? $"\"{text[..longest]}…\"" : $"\"{text}\"",
            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null => value.GetRawText(),
            _ => $"an {KindOf(value)}",
        };
    }
}
