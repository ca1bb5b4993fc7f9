using System.Text.Json;
using FtpCluster.Compute.Chat;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tests.Chat;
using FtpCluster.Compute.Tests.Models;
using FtpCluster.Compute.Tokenizers;
using Xunit;

namespace FtpCluster.Compute.Tests.Tokenizers;

/// <summary>
/// GGUF files with a real vocabulary tokenize exactly as the tokenizer files they were made from: the Llama 2
/// tokenizer.model (shared models) as a "llama" vocabulary, and byte-level BPE tokenizer.json files in four
/// layouts as "gpt2" vocabularies.
/// </summary>
public sealed class GgufTokenizerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>Text of every kind: the varied texts, digits, emoji, CJK, and characters Llama 2 has no token for (byte fallback).</summary>
    private static readonly string[] Texts =
    [
        .. Llama2cTokenizerTests.VariedTexts,
        "0123456789 2024-06-01 3.14159 1,000,000 789 12345",
        "🦙🚀 emoji 😀😃😄 and flags 🇫🇷",
        "東京都の天気は晴れです。 한국어 텍스트",
        ByteFallbackText,
        "\n\n\nthree newlines\r\nand a CRLF\t\ttabs   ",
        "",
    ];

    /// <summary>Control characters and ideographs that Llama 2 has no token for.</summary>
    private const string ByteFallbackText = "\u0001\u0002\u001f control bytes, 𠜎𠜱 rare ideographs, ꙮ";

    private static string Llama2Model => SharedModels.PathTo("llama2-tokenizer", "tokenizer.model");

    [SharedModelsFact]
    public void A_llama2_vocabulary_in_gguf_encodes_and_decodes_as_its_tokenizer_model()
    {
        var expected = SentencePieceModelTokenizer.Load(Llama2Model);
        var gguf = TokenizerLoader.Load(WriteGguf(GgufVocabulary.FromSentencePieceModel(Llama2Model)), 32000);

        Assert.IsType<GgufTokenizer>(gguf);
        Assert.Equal(expected.VocabSize, gguf.VocabSize);
        Assert.Equal(expected.BosId, gguf.BosId);
        Assert.Equal(expected.EosId, gguf.EosId);
        foreach (string text in Texts)
        {
            int[] withBos = expected.Encode(text);
            Assert.Equal(withBos, gguf.Encode(text));
            Assert.Equal(expected.Encode(text, addBos: false), gguf.Encode(text, addBos: false));
            Assert.Equal(expected.Decode(withBos), gguf.Decode(withBos));
            Assert.Equal(expected.Decode(withBos.AsSpan(1)), gguf.Decode(withBos.AsSpan(1)));
        }
        // The texts reach byte fallback (<0x01> is id 4), so the rebuilt model has it on.
        Assert.Contains(4, gguf.Encode(ByteFallbackText));
    }

    [SharedModelsFact]
    public void A_model_written_with_the_llama2_vocabulary_opens_and_brings_its_own_tokenizer()
    {
        var options = SyntheticModelOptions.Preset("tiny") with { VocabSize = 32000, Dim = 16, Heads = 2, KvHeads = 1, HiddenDim = 32, TiedEmbeddings = true };
        var config = options.ToConfig();
        string path = _temp.File("llama2-vocab.gguf");
        GgufModelWriter.Write(path, config, TensorDType.F32, "llama2 vocabulary", (role, layer) =>
            new SyntheticTensorValues(options.Seed, HuggingFaceCheckpoint.TensorName(role, layer), role, CheckpointTensors.ExpectedShape(config, role)).Fill,
            GgufVocabulary.FromSentencePieceModel(Llama2Model));

        using (var checkpoint = GgufCheckpoint.Open(path))
            Assert.Equal(32000, checkpoint.Config.VocabSize);
        Assert.Equal(path, TokenizerLoader.FindBeside(path));
        var tokenizer = TokenizerLoader.Load(path, config.VocabSize);
        Assert.Equal(SentencePieceModelTokenizer.Load(Llama2Model).Encode("Hello world, 2024!"), tokenizer.Encode("Hello world, 2024!"));
    }

    [SharedModelsFact]
    public void A_llama2_gguf_chat_template_renders_as_transformers_does_and_round_trips_through_the_tokenizer()
    {
        string template = File.ReadAllText(Path.Combine(ChatTestFiles.TemplatesFolder, "llama2.jinja"));
        string path = WriteGguf(GgufVocabulary.FromSentencePieceModel(Llama2Model) with { ChatTemplate = template });
        var tokenizer = TokenizerLoader.Load(path);
        var expectedTokenizer = SentencePieceModelTokenizer.Load(Llama2Model);

        var chat = ChatTemplate.ForModel(path);

        // Llama 2's ids 1, 2 and 0 are the special tokens its tokenizer_config.json names.
        Assert.Equivalent(new Dictionary<string, string> { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>" }, chat.SpecialTokens, strict: true);
        foreach (var (messages, addGenerationPrompt, expected) in Renderings("llama2.json"))
        {
            string prompt = chat.Render(messages, addGenerationPrompt);
            Assert.Equal(expected, prompt);
            int[] ids = tokenizer.Encode(prompt, addBos: false);
            Assert.Equal(expectedTokenizer.Encode(prompt, addBos: false), ids);
            Assert.Equal(prompt, tokenizer.Decode(ids));
        }
    }

    public static TheoryData<string> Layouts => [.. ByteLevelBpeFixture.Layouts];

    [Theory]
    [MemberData(nameof(Layouts))]
    public void A_byte_level_vocabulary_in_gguf_encodes_and_decodes_as_its_tokenizer_json(string layout)
    {
        var fixture = ByteLevelBpeFixture.Create(layout);
        var expected = HuggingFaceBpeTokenizer.Load(WriteJson(fixture));
        var gguf = TokenizerLoader.Load(WriteGguf(fixture.ToGguf()));

        Assert.Equal(expected.VocabSize, gguf.VocabSize);
        Assert.Equal(expected.BosId, gguf.BosId);
        Assert.Equal(expected.EosId, gguf.EosId);
        string withAddedTokens = string.Join(" and ", fixture.AddedTokens.Select(a => a.Content)) + "<think>x";
        foreach (string text in Texts.Append(withAddedTokens))
        {
            int[] ids = expected.Encode(text);
            Assert.Equal(ids, gguf.Encode(text));
            Assert.Equal(expected.Encode(text, addBos: false), gguf.Encode(text, addBos: false));
            Assert.Equal(expected.Decode(ids), gguf.Decode(ids));
        }
        // The learned merges do their work: common words are single tokens.
        Assert.Single(gguf.Encode(" the", addBos: false));
    }

    [Fact]
    public void A_merge_given_twice_keeps_its_first_rank_as_llama_cpps_rank_map_does()
    {
        var vocabulary = ByteLevelBpeFixture.Create("gpt-2").ToGguf();
        IReadOnlyList<string> merges = vocabulary.Merges!;
        var expected = TokenizerLoader.Load(WriteGguf(vocabulary));
        // Every merge again, last rank first: a later rank for each would change which pairs merge first.
        var repeated = TokenizerLoader.Load(WriteGguf(vocabulary with { Merges = [.. merges, .. merges.Reverse()] }));

        foreach (string text in Texts)
            Assert.Equal(expected.Encode(text), repeated.Encode(text));
    }

    [Fact]
    public void An_empty_control_token_is_never_matched()
    {
        var vocabulary = ByteLevelBpeFixture.Create("qwen2").ToGguf();
        var expected = TokenizerLoader.Load(WriteGguf(vocabulary));
        var withEmpty = TokenizerLoader.Load(WriteGguf(vocabulary with
        {
            Tokens = [.. vocabulary.Tokens, ""],
            TokenTypes = [.. vocabulary.TokenTypes!, GgufTokenType.Control],
        }));

        foreach (string text in Texts)
            Assert.Equal(expected.Encode(text), withEmpty.Encode(text));
    }

    [Fact]
    public void Llama3_layout_adds_bos_by_default_and_takes_vocabulary_words_whole()
    {
        var fixture = ByteLevelBpeFixture.Create("llama3");
        var gguf = TokenizerLoader.Load(WriteGguf(fixture.ToGguf()));

        int[] ids = gguf.Encode("789");

        Assert.Equal([fixture.IdOf("<|begin_of_text|>"), fixture.IdOf(ByteLevelBpeFixture.UnmergeableToken)], ids);
        var withoutIgnoreMerges = TokenizerLoader.Load(WriteGguf(fixture.ToGguf() with { PreTokenizer = "qwen2" }));
        Assert.DoesNotContain(fixture.IdOf(ByteLevelBpeFixture.UnmergeableToken), withoutIgnoreMerges.Encode("789"));
    }

    [Fact]
    public void Add_bos_and_add_eos_flags_frame_the_text_when_special_tokens_are_asked_for()
    {
        var fixture = ByteLevelBpeFixture.Create("qwen2");
        int start = fixture.IdOf("<|im_start|>"), end = fixture.IdOf("<|endoftext|>");
        var plain = TokenizerLoader.Load(WriteGguf(fixture.ToGguf()));
        var framed = TokenizerLoader.Load(WriteGguf(fixture.ToGguf() with { BosId = start, AddBos = true, AddEos = true }));

        int[] body = plain.Encode("hello world");

        Assert.Equal(-1, plain.BosId);
        Assert.Equal(start, framed.BosId);
        Assert.Equal([start, .. body, end], framed.Encode("hello world"));
        Assert.Equal(body, framed.Encode("hello world", addBos: false));
        Assert.Equal("hello world", framed.Decode(framed.Encode("hello world")));
    }

    /// <summary>
    /// A SentencePiece vocabulary small enough to work out by hand: "ab" (score -0.5) merges before "▁a" (-4), and a
    /// character without a token falls back to its UTF-8 bytes, each the &lt;0xXX&gt; token at id 3 + byte.
    /// </summary>
    [Fact]
    public void A_small_llama_vocabulary_merges_by_score_and_falls_back_to_bytes()
    {
        var gguf = TokenizerLoader.Load(WriteGguf(SmallLlamaVocabulary()));

        // "ab a" → ▁ a b ▁ a → ▁ ab ▁ a (ab first) → ▁ ab ▁a.
        Assert.Equal([1, 259, 263, 262], gguf.Encode("ab a"));
        // "é" is C3 A9: <0xC3> = 3 + 0xC3, <0xA9> = 3 + 0xA9.
        Assert.Equal([259, 3 + 0xC3, 3 + 0xA9], gguf.Encode("é", addBos: false));
        Assert.Equal("ab aé", gguf.Decode([1, 259, 263, 262, 3 + 0xC3, 3 + 0xA9]));
    }

    [Fact]
    public void Add_space_prefix_false_drops_the_dummy_prefix()
    {
        var gguf = TokenizerLoader.Load(WriteGguf(SmallLlamaVocabulary() with { AddSpacePrefix = false }));

        Assert.Equal([1, 263, 262], gguf.Encode("ab a"));
    }

    [Fact]
    public void A_chatml_gguf_template_sees_its_special_tokens_and_round_trips_through_the_tokenizer()
    {
        var fixture = ByteLevelBpeFixture.Create("qwen2");
        string template = File.ReadAllText(Path.Combine(ChatTestFiles.TemplatesFolder, "chatml-default-system.jinja"));
        string path = WriteGguf(fixture.ToGguf() with
        {
            ChatTemplate = template,
            BosId = fixture.IdOf("<|im_start|>"),
            EosId = fixture.IdOf("<|im_end|>"),
            PaddingId = fixture.IdOf("<|im_end|>"),
        });
        var tokenizer = TokenizerLoader.Load(path);
        var expectedTokenizer = HuggingFaceBpeTokenizer.Load(WriteJson(fixture));

        var chat = ChatTemplate.ForModel(path);

        Assert.Equivalent(new Dictionary<string, string> { ["bos_token"] = "<|im_start|>", ["eos_token"] = "<|im_end|>", ["pad_token"] = "<|im_end|>" }, chat.SpecialTokens, strict: true);
        Assert.Equal("<|im_end|>", chat.EndOfTurnTokens[0]);
        foreach (var (messages, addGenerationPrompt, expected) in Renderings("chatml-default-system.json"))
        {
            string prompt = chat.Render(messages, addGenerationPrompt);
            Assert.Equal(expected, prompt);
            int[] ids = tokenizer.Encode(prompt, addBos: false);
            Assert.Equal(expectedTokenizer.Encode(prompt, addBos: false), ids);
            // Each marker the template writes is its one control token.
            Assert.Equal(prompt.Split("<|im_start|>").Length - 1, ids.Count(id => id == fixture.IdOf("<|im_start|>")));
            // Control tokens decode to nothing, as with the tokenizer.json.
            Assert.Equal(prompt.Replace("<|im_start|>", "").Replace("<|im_end|>", ""), tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void A_gguf_without_a_template_or_vocabulary_gets_the_plain_template_and_no_tokenizer()
    {
        var options = SyntheticModelOptions.Preset("tiny");
        string path = _temp.File("no-vocab.gguf");
        ModelSynthesizer.WriteGguf(options, path);

        Assert.True(ChatTemplate.ForModel(path).IsPlain);
        Assert.Empty(ChatTemplate.ForModel(path).SpecialTokens);
        Assert.False(GgufTokenizer.HasVocabulary(path));
        Assert.Null(TokenizerLoader.FindBeside(path));
        var error = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(path));
        Assert.Contains("carries no tokenizer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_tokenizer_models_and_pre_tokenizers_are_named_with_what_is_supported()
    {
        var fixture = ByteLevelBpeFixture.Create("gpt-2");

        var model = Load(fixture.ToGguf() with { Model = "bert" });
        Assert.Contains("'tokenizer.ggml.model' is \"bert\"", model.Message, StringComparison.Ordinal);
        Assert.Contains("\"llama\"", model.Message, StringComparison.Ordinal);
        Assert.Contains("\"gpt2\"", model.Message, StringComparison.Ordinal);

        var pre = Load(fixture.ToGguf() with { PreTokenizer = "falcon" });
        Assert.Contains("'tokenizer.ggml.pre' is \"falcon\"", pre.Message, StringComparison.Ordinal);
        Assert.Contains("\"smollm\"", pre.Message, StringComparison.Ordinal);

        var missingPre = Load(fixture.ToGguf() with { PreTokenizer = null });
        Assert.Contains("'tokenizer.ggml.pre' is missing", missingPre.Message, StringComparison.Ordinal);

        var llamaPre = Load(SmallLlamaVocabulary() with { PreTokenizer = "llama3" });
        Assert.Contains("'tokenizer.ggml.pre' is \"llama3\"", llamaPre.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_vocabularies_are_reported_by_key()
    {
        var fixture = ByteLevelBpeFixture.Create("gpt-2");
        var small = SmallLlamaVocabulary();

        Assert.Contains("'tokenizer.ggml.scores' has 3 entries for the 264 tokens",
            Load(small with { Scores = [0f, 0f, 0f] }).Message, StringComparison.Ordinal);
        Assert.Contains("'tokenizer.ggml.bos_token_id' is 264, which names no token",
            Load(small with { BosId = 264 }).Message, StringComparison.Ordinal);
        Assert.Contains("lists \"a\" twice, at ids 260 and 261",
            Load(small with { Tokens = [.. small.Tokens.Take(261), "a", .. small.Tokens.Skip(262)] }).Message, StringComparison.Ordinal);
        Assert.Contains("'tokenizer.ggml.token_type'[5] is 9",
            Load(small with { TokenTypes = [.. small.TokenTypes!.Take(5), (GgufTokenType)9, .. small.TokenTypes!.Skip(6)] }).Message, StringComparison.Ordinal);
        Assert.Contains("'tokenizer.ggml.scores', which decides the merges, is missing",
            Load(small with { Scores = null }).Message, StringComparison.Ordinal);
        Assert.Contains("'tokenizer.ggml.merges'[1] (\"xyz\" \"w\") uses \"xyz\"",
            Load(fixture.ToGguf() with { Merges = [fixture.ToGguf().Merges![0], "xyz w"] }).Message, StringComparison.Ordinal);
        Assert.Contains("'tokenizer.ggml.merges'[0] is \"ab\": expected two tokens",
            Load(fixture.ToGguf() with { Merges = ["ab"] }).Message, StringComparison.Ordinal);
        Assert.Contains("byte 0x20",
            Load(fixture.ToGguf() with { Tokens = [.. fixture.Tokens.Select(t => t == "Ġ" ? "<space>" : t)], Merges = [] }).Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// ids 0 &lt;unk&gt;, 1 &lt;s&gt;, 2 &lt;/s&gt;, 3..258 the byte tokens, 259 "▁" (-1), 260 "a" (-2), 261 "b" (-3),
    /// 262 "▁a" (-4), 263 "ab" (-0.5).
    /// </summary>
    private static GgufVocabulary SmallLlamaVocabulary()
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var scores = new List<float> { 0, 0, 0 };
        var types = new List<GgufTokenType> { GgufTokenType.Unknown, GgufTokenType.Control, GgufTokenType.Control };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            scores.Add(0);
            types.Add(GgufTokenType.Byte);
        }
        foreach (var (token, score) in new[] { ("▁", -1f), ("a", -2f), ("b", -3f), ("▁a", -4f), ("ab", -0.5f) })
        {
            tokens.Add(token);
            scores.Add(score);
            types.Add(GgufTokenType.Normal);
        }
        return new GgufVocabulary
        {
            Model = "llama",
            PreTokenizer = "default",
            Tokens = tokens,
            Scores = scores,
            TokenTypes = types,
            BosId = 1,
            EosId = 2,
            UnknownId = 0,
        };
    }

    private ModelFormatException Load(GgufVocabulary vocabulary)
    {
        string path = WriteGguf(vocabulary);
        var error = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(path));
        Assert.Equal(path, error.File);
        return error;
    }

    /// <summary>A GGUF file of the vocabulary's metadata alone (no tensors): all a tokenizer reads.</summary>
    private string WriteGguf(GgufVocabulary vocabulary) => TokenizerFiles.WriteGguf(_temp, vocabulary);

    private string WriteJson(ByteLevelBpeFixture fixture) => TokenizerFiles.WriteJson(_temp, fixture);

    /// <summary>
    /// The conversations of one file in Chat/Renderings that Python jinja2 rendered (not those the template refuses,
    /// which the rendering tests cover), with their renderings.
    /// </summary>
    private static List<(JsonElement Messages, bool AddGenerationPrompt, string Output)> Renderings(string file)
    {
        JsonElement conversations = ChatTestFiles.ReadJson("Templates", "conversations.json").GetProperty("conversations");
        var cases = new List<(JsonElement, bool, string)>();
        foreach (JsonElement rendering in ChatTestFiles.ReadJson("Renderings", file).GetProperty("cases").EnumerateArray())
        {
            if (rendering.TryGetProperty("output", out JsonElement output))
            {
                cases.Add((conversations.GetProperty(rendering.GetProperty("conversation").GetString()!),
                    rendering.GetProperty("add_generation_prompt").GetBoolean(), output.GetString()!));
            }
        }
        Assert.NotEmpty(cases);
        return cases;
    }
}
