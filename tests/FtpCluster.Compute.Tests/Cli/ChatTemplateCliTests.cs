using System.Text.Json;

namespace FtpCluster.Compute.Tests.Cli;

/// <summary><c>ftpcluster models chat-template</c>: the prompt a chat request becomes, from tokenizer_config.json alone.</summary>
public sealed class ChatTemplateCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ftp-chat-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Prints_the_rendered_prompt_of_a_model_folder_without_weights()
    {
        string template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
            + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), JsonSerializer.Serialize(new { chat_template = template, eos_token = "<|im_end|>" }));
        var (code, stdout, stderr) = CliTests.Run("models", "chat-template", "--model", _dir, "--messages", """[{"role": "user", "content": "Hi"}]""");
        Assert.True(code == 0, stderr);
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", stdout);

        (code, stdout, _) = CliTests.Run("models", "chat-template", "--model", _dir, "--messages", """[{"role": "user", "content": "Hi"}]""", "--no-generation-prompt");
        Assert.Equal(0, code);
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n", stdout);
    }

    [Fact]
    public void A_model_without_a_template_gets_the_plain_one_and_bad_messages_are_refused()
    {
        var (code, stdout, stderr) = CliTests.Run("models", "chat-template", "--model", _dir, "--messages",
            """[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]""");
        Assert.True(code == 0, stderr);
        Assert.Equal("system: Be brief.\nuser: Hi\nassistant:", stdout);

        (code, _, stderr) = CliTests.Run("models", "chat-template", "--model", _dir, "--messages", "{\"role\": \"user\"}");
        Assert.Equal(2, code);
        Assert.Contains("--messages expects a JSON array", stderr);
    }
}
