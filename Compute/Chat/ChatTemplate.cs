using System.Text.Json;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Chat;

/// <summary>
/// A model's chat template: the Jinja template from its tokenizer_config.json that turns OpenAI-style chat
/// messages into prompt text, rendered as Hugging Face transformers renders it (trim_blocks, lstrip_blocks,
/// <c>raise_exception</c>, <c>tojson</c> without HTML escaping, <c>strftime_now</c>). The source is parsed once, in
/// the constructor; <see cref="Render"/> may be called from several threads at once.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The largest tokenizer_config.json read (16 MiB); a larger file is refused before it is read.</summary>
    public const long MaxConfigBytes = 16L * 1024 * 1024;

    /// <summary>The names transformers passes to templates as special-token variables, when the config sets them.</summary>
    private static readonly string[] SpecialTokenNames =
        ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    /// <summary>
    /// Markers that published chat templates write after each message to close a turn (ChatML, Llama 3, Phi-3,
    /// Gemma, Llama 2 / Mistral / Zephyr, and GPT-style end-of-text). A model stops generating when it emits one,
    /// so each that appears literally in the template text is an end-of-turn token; markers the template does not
    /// write are left out, since in another model's vocabulary they may mean something else or not exist.
    /// </summary>
    private static readonly string[] KnownEndOfTurnMarkers =
        ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>", "</s>", "<|endoftext|>", "<|END_OF_TURN_TOKEN|>"];

    private readonly IReadOnlyList<Statement> _body;

    /// <summary>Parses <paramref name="source"/>; a construct outside the supported subset throws <see cref="ChatTemplateException"/>.</summary>
    /// <param name="source">The Jinja template text.</param>
    /// <param name="specialTokens">Variables such as <c>bos_token</c> and <c>eos_token</c>, by name.</param>
    public ChatTemplate(string source, IReadOnlyDictionary<string, string>? specialTokens = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        Source = source;
        SpecialTokens = specialTokens ?? new Dictionary<string, string>();
        _body = TemplateParser.Parse(source);
        EndOfTurnTokens = FindEndOfTurnTokens(source, SpecialTokens.GetValueOrDefault("eos_token"));
    }

    /// <summary>
    /// The template used for a model without one (no tokenizer_config.json, or no chat_template in it, as with the
    /// llama2.c test models): one line per message, <c>role: content</c> (a content array contributes the text of
    /// its <c>{"type": "text"}</c> parts; a null or missing content, nothing), followed by <c>assistant:</c> (no newline) when a generation prompt is
    /// added. For <c>[system "Be brief.", user "Hi"]</c>: <c>"system: Be brief.\nuser: Hi\nassistant:"</c>.
    /// </summary>
    public static string PlainTemplateSource { get; } =
        "{% for message in messages %}{{ message.role ~ ': ' }}"
        + "{% if message.content is string %}{{ message.content }}"
        + "{% elif message.content is sequence %}{% for part in message.content if part.type == 'text' %}{{ part.text }}{% endfor %}{% endif %}"
        + "{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>True for <see cref="PlainTemplateSource"/>, used when the model has no template of its own.</summary>
    public bool IsPlain => Source == PlainTemplateSource;

    /// <summary>The special-token variables the template sees (<c>bos_token</c>, <c>eos_token</c>, ...).</summary>
    public IReadOnlyDictionary<string, string> SpecialTokens { get; }

    /// <summary>
    /// Token strings that end an assistant turn, so generation stops at them: the eos_token first, then each
    /// known end-of-turn marker (<c>&lt;|im_end|&gt;</c>, <c>&lt;|eot_id|&gt;</c>, <c>&lt;|end|&gt;</c>,
    /// <c>&lt;end_of_turn&gt;</c>, <c>&lt;/s&gt;</c>, ...) that the template text itself writes. Without duplicates.
    /// </summary>
    public IReadOnlyList<string> EndOfTurnTokens { get; }

    /// <summary>The bounds on one rendering.</summary>
    public ChatTemplateLimits Limits { get; init; } = ChatTemplateLimits.Default;

    /// <summary>The clock <c>strftime_now</c> reads (local time, as Python's <c>datetime.now()</c>).</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>
    /// Reads the chat template of a tokenizer_config.json: <c>chat_template</c> is a string, or a list of
    /// <c>{name, template}</c> of which the one named "default" is taken. Special tokens (<c>bos_token</c>, ...) may
    /// be strings or objects with a <c>content</c> string. Null when the file has no chat_template. A missing,
    /// unreadable, malformed or over-large (<see cref="MaxConfigBytes"/>) file throws <see cref="ChatTemplateException"/>.
    /// </summary>
    public static ChatTemplate? FromTokenizerConfig(string tokenizerConfigPath)
    {
        (string? source, Dictionary<string, string> specialTokens) = ReadTokenizerConfig(tokenizerConfigPath);
        return source is null ? null : new ChatTemplate(source, specialTokens);
    }

    /// <summary>
    /// The chat template of the model at <paramref name="modelPathOrFolder"/> (a model folder, or a file in it):
    /// a <c>.gguf</c> file's own (<see cref="FromGguf"/>); otherwise from the folder's tokenizer_config.json, else
    /// <see cref="PlainTemplateSource"/> (with the config's special tokens, when there is a config without a template).
    /// </summary>
    public static ChatTemplate ForModel(string modelPathOrFolder)
    {
        if (File.Exists(modelPathOrFolder) && Path.GetExtension(modelPathOrFolder).Equals(".gguf", StringComparison.OrdinalIgnoreCase))
            return FromGguf(modelPathOrFolder);
        string folder = Directory.Exists(modelPathOrFolder)
            ? modelPathOrFolder
            : File.Exists(modelPathOrFolder)
                ? Path.GetDirectoryName(Path.GetFullPath(modelPathOrFolder))!
                : throw new ChatTemplateException($"{modelPathOrFolder}: no such model file or folder");
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(configPath))
            return new ChatTemplate(PlainTemplateSource);
        (string? source, Dictionary<string, string> specialTokens) = ReadTokenizerConfig(configPath);
        return new ChatTemplate(source ?? PlainTemplateSource, specialTokens);
    }

    /// <summary>
    /// The chat template a GGUF file carries in <c>tokenizer.chat_template</c>, else <see cref="PlainTemplateSource"/>.
    /// The template sees the tokens that the file's BOS, EOS, unknown and padding ids name as <c>bos_token</c>,
    /// <c>eos_token</c>, <c>unk_token</c> and <c>pad_token</c>, as transformers would from the original
    /// tokenizer_config.json. An unreadable file or vocabulary throws <see cref="ChatTemplateException"/>.
    /// </summary>
    public static ChatTemplate FromGguf(string ggufPath)
    {
        string? source;
        var specialTokens = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var file = GgufFile.Open(ggufPath);
            source = file.Metadata.String(GgufVocabulary.ChatTemplateKey);
            if (GgufVocabulary.Read(file.Metadata) is { } vocabulary)
            {
                (string Name, int? Id)[] named =
                    [("bos_token", vocabulary.BosId), ("eos_token", vocabulary.EosId), ("unk_token", vocabulary.UnknownId), ("pad_token", vocabulary.PaddingId)];
                foreach (var (name, id) in named)
                {
                    if (id is { } tokenId)
                        specialTokens[name] = vocabulary.Tokens[tokenId];
                }
            }
        }
        catch (ModelFormatException e)
        {
            throw new ChatTemplateException($"cannot read the chat template of {e.Message}", e);
        }
        return new ChatTemplate(source ?? PlainTemplateSource, specialTokens);
    }

    /// <summary>
    /// Renders the prompt for <paramref name="messages"/>, the OpenAI <c>messages</c> JSON array as received: each
    /// message, with all its fields, is a dict to the template (a <c>content</c> array of parts stays an array). The
    /// template also sees <c>add_generation_prompt</c>, the <see cref="SpecialTokens"/>, and the properties of
    /// <paramref name="variables"/> (a JSON object, e.g. <c>{"tools": [...]}</c>) when given; <c>messages</c> and
    /// <c>add_generation_prompt</c> there are ignored in favour of the arguments.
    /// </summary>
    /// <exception cref="ChatTemplateException">The template failed, refused the messages (<c>raise_exception</c>,
    /// see <see cref="ChatTemplateException.RaisedByTemplate"/>), or exceeded <see cref="Limits"/>.</exception>
    public string Render(JsonElement messages, bool addGenerationPrompt = true, JsonElement? variables = null)
    {
        if (messages.ValueKind != JsonValueKind.Array)
            throw new ChatTemplateException($"messages must be a JSON array of message objects, not {messages.ValueKind}");
        var globals = new Scope(null);
        JinjaGlobals.AddTo(globals);
        foreach ((string name, string token) in SpecialTokens)
            globals.Set(name, token);
        if (variables is { } extra)
        {
            if (extra.ValueKind != JsonValueKind.Object)
                throw new ChatTemplateException($"template variables must be a JSON object, not {extra.ValueKind}");
            foreach (JsonProperty property in extra.EnumerateObject())
                globals.Set(property.Name, JinjaValues.FromJson(property.Value));
        }
        globals.Set("messages", JinjaValues.FromJson(messages));
        globals.Set("add_generation_prompt", addGenerationPrompt);

        var context = new RenderContext(globals, Limits, Clock);
        Statement.RenderAll(_body, context);
        return context.Output;
    }

    private static List<string> FindEndOfTurnTokens(string source, string? eosToken)
    {
        var tokens = new List<string>();
        if (!string.IsNullOrEmpty(eosToken))
            tokens.Add(eosToken);
        foreach (string marker in KnownEndOfTurnMarkers)
        {
            if (source.Contains(marker, StringComparison.Ordinal) && !tokens.Contains(marker))
                tokens.Add(marker);
        }
        return tokens;
    }

    private static (string? Source, Dictionary<string, string> SpecialTokens) ReadTokenizerConfig(string path)
    {
        if (!File.Exists(path))
            throw new ChatTemplateException($"{path}: no such tokenizer_config.json");
        // The size of what a symbolic link (as in the Hugging Face cache) points to, not of the link.
        var file = new FileInfo(path);
        if (file.LinkTarget is not null)
            file = (FileInfo)file.ResolveLinkTarget(returnFinalTarget: true)!;
        if (file.Length > MaxConfigBytes)
            throw new ChatTemplateException($"{path}: {file.Length} bytes, more than the {MaxConfigBytes} bytes a tokenizer_config.json may have");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new ChatTemplateException($"{path}: not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ChatTemplateException($"{path}: expected a JSON object, found {root.ValueKind}");
            var specialTokens = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string name in SpecialTokenNames)
            {
                if (root.TryGetProperty(name, out JsonElement token) && ReadToken(path, name, token) is { } text)
                    specialTokens[name] = text;
            }
            string? source = root.TryGetProperty("chat_template", out JsonElement template) ? ReadTemplate(path, template) : null;
            return (source, specialTokens);
        }
    }

    private static string? ReadToken(string path, string name, JsonElement token) => token.ValueKind switch
    {
        JsonValueKind.String => token.GetString(),
        JsonValueKind.Null => null,
        JsonValueKind.Object when token.TryGetProperty("content", out JsonElement content) && content.ValueKind == JsonValueKind.String
            => content.GetString(),
        _ => throw new ChatTemplateException($"{path}: '{name}' must be a string or an object with a 'content' string, found {token.ValueKind}"),
    };

    private static string? ReadTemplate(string path, JsonElement template)
    {
        switch (template.ValueKind)
        {
            case JsonValueKind.String:
                return template.GetString();
            case JsonValueKind.Null:
                return null;
            case JsonValueKind.Array:
                var names = new List<string>();
                foreach (JsonElement entry in template.EnumerateArray())
                {
                    if (entry.ValueKind != JsonValueKind.Object
                        || !entry.TryGetProperty("name", out JsonElement name) || name.ValueKind != JsonValueKind.String
                        || !entry.TryGetProperty("template", out JsonElement text) || text.ValueKind != JsonValueKind.String)
                    {
                        throw new ChatTemplateException($"{path}: each entry of the 'chat_template' list must be an object with 'name' and 'template' strings");
                    }
                    if (name.GetString() == "default")
                        return text.GetString();
                    names.Add(name.GetString()!);
                }
                throw new ChatTemplateException(
                    $"{path}: the 'chat_template' list has no template named 'default' (it has: {string.Join(", ", names.Select(n => $"'{n}'"))})");
            default:
                throw new ChatTemplateException($"{path}: 'chat_template' must be a string or a list of {{name, template}}, found {template.ValueKind}");
        }
    }
}
