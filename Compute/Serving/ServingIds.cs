using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace FtpCluster.Compute.Serving;

/// <summary>Random ids in OpenAI's style: a prefix saying what the id names, then 24 hex digits.</summary>
internal static class ServingIds
{
    public static string New(string prefix) => prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
}

/// <summary>How response bodies and output lines are written: compact, and with text as UTF-8 rather than \u escapes
/// (the output is JSON read by JSON parsers, never pasted into HTML, so the default encoder's HTML-safe escaping of
/// every non-ASCII character only makes answers unreadable in the file).</summary>
internal static class ServingJson
{
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
