using System.Text.Json;
using FtpCluster.Compute.Chat;

namespace FtpCluster.Compute.Tests.Chat;

/// <summary>The engine's renderings compared, character for character, with Python jinja2's (Renderings/*.json).</summary>
public sealed class ChatTemplateRenderingTests
{
    public static TheoryData<string, int> TemplateCases()
    {
        var data = new TheoryData<string, int>();
        foreach (string path in Directory.GetFiles(ChatTestFiles.TemplatesFolder, "*.jinja").Order(StringComparer.Ordinal))
        {
            string stem = Path.GetFileNameWithoutExtension(path);
            int count = ChatTestFiles.ReadJson("Renderings", stem + ".json").GetProperty("cases").GetArrayLength();
            for (int i = 0; i < count; i++)
                data.Add(stem, i);
        }
        return data;
    }

    public static TheoryData<string> SnippetNames()
    {
        var data = new TheoryData<string>();
        foreach (JsonElement snippet in ChatTestFiles.ReadJson("Templates", "snippets.json").EnumerateArray())
            data.Add(snippet.GetProperty("name").GetString()!);
        return data;
    }

    [Fact]
    public void Every_template_has_renderings_for_every_conversation_with_and_without_a_generation_prompt()
    {
        int conversations = ChatTestFiles.ReadJson("Templates", "conversations.json").GetProperty("conversations").EnumerateObject().Count();
        string[] templates = Directory.GetFiles(ChatTestFiles.TemplatesFolder, "*.jinja");

        Assert.Equal(6, templates.Length);
        foreach (string template in templates)
        {
            JsonElement rendering = ChatTestFiles.ReadJson("Renderings", Path.GetFileNameWithoutExtension(template) + ".json");
            Assert.Equal(2 * conversations, rendering.GetProperty("cases").GetArrayLength());
        }
    }

    [Theory]
    [MemberData(nameof(TemplateCases))]
    public void Renders_each_template_as_jinja2_does(string templateStem, int caseIndex)
    {
        JsonElement rendering = ChatTestFiles.ReadJson("Renderings", templateStem + ".json");
        JsonElement expected = rendering.GetProperty("cases")[caseIndex];
        var tokens = rendering.GetProperty("special_tokens").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        var template = new ChatTemplate(File.ReadAllText(Path.Combine(ChatTestFiles.TemplatesFolder, templateStem + ".jinja")), tokens);
        JsonElement messages = ChatTestFiles.ReadJson("Templates", "conversations.json")
            .GetProperty("conversations").GetProperty(expected.GetProperty("conversation").GetString()!);
        bool addGenerationPrompt = expected.GetProperty("add_generation_prompt").GetBoolean();

        AssertRenders(expected, () => template.Render(messages, addGenerationPrompt));
    }

    [Theory]
    [MemberData(nameof(SnippetNames))]
    public void Renders_each_snippet_as_jinja2_does(string name)
    {
        JsonElement snippet = ChatTestFiles.ReadJson("Templates", "snippets.json").EnumerateArray().Single(s => s.GetProperty("name").GetString() == name);
        JsonElement expected = ChatTestFiles.ReadJson("Renderings", "snippets.json").EnumerateArray().Single(s => s.GetProperty("name").GetString() == name);
        JsonElement variables = snippet.GetProperty("variables");
        using JsonDocument noMessages = JsonDocument.Parse("[]");
        JsonElement messages = variables.TryGetProperty("messages", out JsonElement given) ? given : noMessages.RootElement;

        AssertRenders(expected, () => new ChatTemplate(snippet.GetProperty("template").GetString()!)
            .Render(messages, addGenerationPrompt: true, variables));
    }

    /// <summary>
    /// An expected output must match exactly; an expected raise_exception must carry the template's message
    /// exactly. Other Python errors (a TypeError, an UndefinedError) must fail here too, with a message that
    /// locates the construct; their wording is Python's and is not compared.
    /// </summary>
    private static void AssertRenders(JsonElement expected, Func<string> render)
    {
        if (expected.TryGetProperty("output", out JsonElement output))
        {
            Assert.Equal(output.GetString(), render());
            return;
        }
        var error = Assert.Throws<ChatTemplateException>(() => render());
        if (expected.GetProperty("raised_by_template").GetBoolean())
        {
            Assert.True(error.RaisedByTemplate, error.Message);
            Assert.Equal(expected.GetProperty("error").GetString(), error.Message);
        }
        else
        {
            Assert.False(error.RaisedByTemplate);
            Assert.StartsWith("chat template line ", error.Message, StringComparison.Ordinal);
        }
    }
}
