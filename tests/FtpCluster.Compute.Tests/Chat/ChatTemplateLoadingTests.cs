using System.Text.Json;
using System.Text.Json.Nodes;
using FtpCluster.Compute.Chat;

namespace FtpCluster.Compute.Tests.Chat;

/// <summary>Templates read from tokenizer_config.json, the plain fallback, and the end-of-turn tokens.</summary>
public sealed class ChatTemplateLoadingTests : IDisposable
{
    private const string ChatMl = "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private readonly string _folder = Directory.CreateTempSubdirectory("chat-template-tests").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static JsonElement Messages(string json) => JsonDocument.Parse(json).RootElement;

    private static readonly JsonElement SystemAndUser =
        Messages("""[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]""");

    private string WriteConfig(JsonObject config)
    {
        string path = Path.Combine(_folder, "tokenizer_config.json");
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    [Fact]
    public void Reads_a_string_chat_template_and_object_form_special_tokens()
    {
        string path = WriteConfig(new JsonObject
        {
            ["chat_template"] = "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}{{ unk_token }}|{{ pad_token }}",
            ["bos_token"] = new JsonObject { ["content"] = "<s>", ["lstrip"] = false },
            ["eos_token"] = new JsonObject { ["content"] = "</s>", ["special"] = true },
            ["unk_token"] = "<unk>",
            ["pad_token"] = null,
            ["add_bos_token"] = true,
        });

        ChatTemplate template = ChatTemplate.FromTokenizerConfig(path)!;

        Assert.Equal("<s>Be brief.</s>Hi</s><unk>|", template.Render(SystemAndUser));
        Assert.Equal(new Dictionary<string, string> { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>" }, template.SpecialTokens);
        Assert.Equal(["</s>"], template.EndOfTurnTokens);
    }

    [Fact]
    public void Takes_the_default_entry_of_a_list_of_named_templates()
    {
        string path = WriteConfig(new JsonObject
        {
            ["chat_template"] = new JsonArray(
                new JsonObject { ["name"] = "tool_use", ["template"] = "tools" },
                new JsonObject { ["name"] = "default", ["template"] = ChatMl }),
            ["eos_token"] = "<|endoftext|>",
        });

        ChatTemplate template = ChatTemplate.FromTokenizerConfig(path)!;

        Assert.Equal(ChatMl, template.Source);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", template.Render(SystemAndUser));
        Assert.Equal(["<|endoftext|>", "<|im_end|>"], template.EndOfTurnTokens);
    }

    [Fact]
    public void A_list_without_a_default_template_is_refused_naming_the_templates_it_has()
    {
        string path = WriteConfig(new JsonObject
        {
            ["chat_template"] = new JsonArray(new JsonObject { ["name"] = "tool_use", ["template"] = "x" }, new JsonObject { ["name"] = "rag", ["template"] = "y" }),
        });

        var error = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(path));

        Assert.Equal($"{path}: the 'chat_template' list has no template named 'default' (it has: 'tool_use', 'rag')", error.Message);
    }

    [Theory]
    [InlineData("""{"chat_template": 42}""", "'chat_template' must be a string or a list of {name, template}, found Number")]
    [InlineData("""{"chat_template": [{"name": "default"}]}""", "each entry of the 'chat_template' list must be an object with 'name' and 'template' strings")]
    [InlineData("""{"eos_token": ["</s>"]}""", "'eos_token' must be a string or an object with a 'content' string, found Array")]
    [InlineData("""["not", "an", "object"]""", "expected a JSON object, found Array")]
    [InlineData("""{"chat_template": """, "not valid JSON: ")]
    public void A_malformed_config_is_refused_naming_the_file_and_the_problem(string json, string problem)
    {
        string path = Path.Combine(_folder, "tokenizer_config.json");
        File.WriteAllText(path, json);

        var error = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(path));

        Assert.StartsWith($"{path}: {problem}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_config_without_a_chat_template_gives_null_and_the_model_gets_the_plain_template_with_its_tokens()
    {
        string path = WriteConfig(new JsonObject { ["eos_token"] = "</s>", ["chat_template"] = null });
        File.WriteAllBytes(Path.Combine(_folder, "model.bin"), [0]);

        Assert.Null(ChatTemplate.FromTokenizerConfig(path));
        ChatTemplate template = ChatTemplate.ForModel(Path.Combine(_folder, "model.bin"));
        Assert.True(template.IsPlain);
        Assert.Equal("</s>", template.SpecialTokens["eos_token"]);
        Assert.Equal(["</s>"], template.EndOfTurnTokens);
    }

    [Fact]
    public void ForModel_reads_the_config_in_a_model_folder()
    {
        WriteConfig(new JsonObject { ["chat_template"] = ChatMl });

        ChatTemplate template = ChatTemplate.ForModel(_folder);

        Assert.False(template.IsPlain);
        Assert.Equal(["<|im_end|>"], template.EndOfTurnTokens);
    }

    [Fact]
    public void A_model_without_a_config_gets_the_plain_template()
    {
        ChatTemplate template = ChatTemplate.ForModel(_folder);

        Assert.True(template.IsPlain);
        Assert.Equal("system: Be brief.\nuser: Hi\nassistant:", template.Render(SystemAndUser));
        Assert.Equal("system: Be brief.\nuser: Hi\n", template.Render(SystemAndUser, addGenerationPrompt: false));
        Assert.Empty(template.EndOfTurnTokens);
    }

    [Fact]
    public void The_plain_template_takes_the_text_parts_of_a_content_array()
    {
        var template = new ChatTemplate(ChatTemplate.PlainTemplateSource);
        JsonElement messages = Messages("""
            [{"role": "user", "content": [{"type": "text", "text": "Look "}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "here"}]},
             {"role": "assistant", "content": null}]
            """);

        Assert.Equal("user: Look here\nassistant: \nassistant:", template.Render(messages));
    }

    [SharedModelsFact]
    public void The_llama2c_test_models_have_no_template_and_get_the_plain_one()
    {
        Assert.True(ChatTemplate.ForModel(SharedModels.PathTo("stories260K", "stories260K.bin")).IsPlain);
        Assert.True(ChatTemplate.ForModel(SharedModels.PathTo("aidreams260K")).IsPlain);
    }

    [Fact]
    public void A_missing_model_path_or_config_is_refused()
    {
        string missing = Path.Combine(_folder, "absent");

        Assert.Equal($"{missing}: no such model file or folder", Assert.Throws<ChatTemplateException>(() => ChatTemplate.ForModel(missing)).Message);
        Assert.Equal($"{missing}: no such tokenizer_config.json", Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(missing)).Message);
    }

    [Fact]
    public void A_config_over_16_MiB_is_refused_before_it_is_read()
    {
        string path = Path.Combine(_folder, "tokenizer_config.json");
        using (var file = new FileStream(path, FileMode.Create))
            file.SetLength(ChatTemplate.MaxConfigBytes + 1);

        var error = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig(path));

        Assert.Equal($"{path}: 16777217 bytes, more than the 16777216 bytes a tokenizer_config.json may have", error.Message);
    }

    [Theory]
    [InlineData("{{ m.content }}<|eot_id|>", "<|eot_id|>", new[] { "<|eot_id|>" })]
    [InlineData("<start_of_turn>{{ m }}<end_of_turn>\n", "<eos>", new[] { "<eos>", "<end_of_turn>" })]
    [InlineData("<|user|>{{ m }}<|end|><|assistant|>", "<|endoftext|>", new[] { "<|endoftext|>", "<|end|>" })]
    [InlineData("[INST] {{ m }} [/INST]{{ eos_token }}", "</s>", new[] { "</s>" })]
    [InlineData("{{ m }}", null, new string[0])]
    public void End_of_turn_tokens_are_the_eos_token_and_the_markers_the_template_writes(string source, string? eos, string[] expected)
    {
        var tokens = eos is null ? null : new Dictionary<string, string> { ["eos_token"] = eos };

        Assert.Equal(expected, new ChatTemplate(source, tokens).EndOfTurnTokens);
    }

    [Fact]
    public void Passes_every_message_field_and_extra_variables_to_the_template()
    {
        var template = new ChatTemplate("{% for m in messages %}{{ m.role }}/{{ m.name }}/{{ m.tool_call_id | default('-') }};{% endfor %}{{ tools | map(attribute='name') | join(',') }}");
        JsonElement messages = Messages("""[{"role": "user", "name": "ann", "content": "x"}, {"role": "tool", "name": "calc", "tool_call_id": "c1", "content": "2"}]""");
        JsonElement variables = Messages("""{"tools": [{"name": "calc"}, {"name": "search"}]}""");

        Assert.Equal("user/ann/-;tool/calc/c1;calc,search", template.Render(messages, addGenerationPrompt: true, variables));
    }
}
