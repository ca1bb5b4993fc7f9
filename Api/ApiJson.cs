using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace FtpCluster.Api;

/// <summary>Response bodies written as OpenAI's are: compact JSON objects, text as UTF-8, times in Unix seconds.</summary>
internal static class ApiJson
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static async Task Write(HttpContext http, Action<Utf8JsonWriter> write)
    {
        http.Response.ContentType = "application/json";
        await using (var json = new Utf8JsonWriter(http.Response.BodyWriter, WriterOptions)) write(json);
        await http.Response.BodyWriter.FlushAsync(http.RequestAborted);
    }

    public static void WriteTime(this Utf8JsonWriter json, string name, DateTimeOffset? time)
    {
        if (time is { } t) json.WriteNumber(name, t.ToUnixTimeSeconds());
        else json.WriteNull(name);
    }

    public static void WriteStringOrNull(this Utf8JsonWriter json, string name, string? value)
    {
        if (value is null) json.WriteNull(name);
        else json.WriteString(name, value);
    }

    /// <summary>OpenAI's list object: <c>{"object": "list", "data": [...], "first_id", "last_id", "has_more"}</c>.</summary>
    public static void WriteList<T>(this Utf8JsonWriter json, IReadOnlyList<T> items, Func<T, string> id, bool hasMore, Action<Utf8JsonWriter, T> write)
    {
        json.WriteStartObject();
        json.WriteString("object", "list");
        json.WriteStartArray("data");
        foreach (var item in items) write(json, item);
        json.WriteEndArray();
        json.WriteStringOrNull("first_id", items.Count > 0 ? id(items[0]) : null);
        json.WriteStringOrNull("last_id", items.Count > 0 ? id(items[^1]) : null);
        json.WriteBoolean("has_more", hasMore);
        json.WriteEndObject();
    }
}
