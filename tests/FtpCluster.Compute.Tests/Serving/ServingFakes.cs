using System.Text;
using System.Text.Json;
using FtpCluster.Compute.Serving;

namespace FtpCluster.Compute.Tests.Serving;

/// <summary>
/// A stand-in tokenizer and chat template: every UTF-16 character is one token whose id is its code, after a BOS of
/// id 1; a chat renders as "role: content\n" per message and "assistant: " at the end. A role "fail" makes the
/// template throw, as a real template does on a role it does not know.
/// </summary>
internal sealed class CharPromptEncoder : IPromptEncoder
{
    public const int Bos = 1;

    public int[] Encode(string text) => [Bos, .. text.Select(c => (int)c)];

    public string RenderChat(JsonElement messages)
    {
        var text = new StringBuilder();
        foreach (var message in messages.EnumerateArray())
        {
            string role = message.GetProperty("role").GetString()!;
            if (role == "fail") throw new InvalidOperationException("the template knows no role 'fail'");
            var content = message.GetProperty("content");
            string body = content.ValueKind == JsonValueKind.String
                ? content.GetString()!
                : string.Concat(content.EnumerateArray().Select(part => part.GetProperty("text").GetString()));
            text.Append(role).Append(": ").Append(body).Append('\n');
        }
        return text.Append("assistant: ").ToString();
    }

    public static string Decode(int[] ids) => new([.. ids.Where(id => id != Bos).Select(id => (char)id)]);

    public static byte[] TokenBytes(int id) => Encoding.UTF8.GetBytes(((char)id).ToString());
}

internal static class Bodies
{
    public static CompletionRequest Parse(string json, CompletionEndpoint endpoint = CompletionEndpoint.Completions)
    {
        using var document = JsonDocument.Parse(json);
        return CompletionRequest.Parse(document.RootElement, endpoint);
    }

    public static CompletionRequest ChatBody(string json) => Parse(json, CompletionEndpoint.ChatCompletions);

    public static RequestException Refused(string json, CompletionEndpoint endpoint = CompletionEndpoint.Completions) =>
        Assert.Throws<RequestException>(() => Parse(json, endpoint));

    public static RequestException ChatRefused(string json) => Refused(json, CompletionEndpoint.ChatCompletions);
}
