using System.Text.Json.Nodes;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tokenizers;
using Xunit;

namespace FtpCluster.Compute.Tests.Tokenizers;

/// <summary>
/// Small tokenizer.json files built here: ids 0..255 are the 256 byte symbols in byte order (so a byte's id
/// is its value: 'a' = 97, space 'Ġ' = 32), then the tokens of <see cref="Merges"/> from 256 on.
/// </summary>
public sealed class HuggingFaceBpeTokenizerTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("hf-tokenizer-tests").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Merges in rank order, with the id of the token each one makes.</summary>
    private static readonly (string Left, string Right, int Id)[] Merges =
    [
        ("Ġ", "t", 256),    // rank 0: Ġt
        ("h", "e", 257),    // rank 1: he
        ("Ġt", "he", 258),  // rank 2: Ġthe
        ("l", "l", 259),    // rank 3: ll
        ("e", "l", 260),    // rank 4: el
        ("he", "ll", 261),  // rank 5: hell
        ("hell", "o", 262), // rank 6: hello
        ("Ġ", "hello", 263), // rank 7: Ġhello
    ];

    private const int BeginOfText = 300, EndOfText = 301, EndOfTurn = 302, Think = 303;

    private const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    [Fact]
    public void Merges_by_rank_within_gpt2_pre_tokens()
    {
        var tokenizer = Load(Gpt2Style());

        // GPT-2's regex cuts "the hello world the" into "the", " hello", " world", " the".
        //   "the": t h e → (h e) rank 1 → t he; "t he" is no merge.                        → 116 257
        //   " hello": Ġ h e l l o → he (1) → ll (3; "e l" rank 4 is gone with the e)
        //             → hell (5) → hello (6) → Ġhello (7)                                   → 263
        //   " world": no pair is a merge                                                   → 32 119 111 114 108 100
        //   " the": Ġ t h e → Ġt (0) → he (1) → Ġthe (2)                                  → 258
        Assert.Equal([116, 257, 263, 32, 119, 111, 114, 108, 100, 258], tokenizer.Encode("the hello world the"));
    }

    [Fact]
    public void Merges_the_leftmost_of_equal_rank_pairs_first()
    {
        var tokenizer = Load(Gpt2Style());

        // "lll" offers "l l" twice; the left one merges: ll l.
        Assert.Equal([259, 108], tokenizer.Encode("lll"));
        // "hel": (h e) rank 1 beats (e l) rank 4.
        Assert.Equal([257, 108], tokenizer.Encode("hel"));
    }

    [Fact]
    public void Reads_merges_written_as_arrays_the_same_as_strings()
    {
        var strings = Load(Gpt2Style());
        var arrays = Load(Gpt2Style(arrayMerges: true));

        foreach (string text in Llama2cTokenizerTests.VariedTexts.Append("the hello world the"))
            Assert.Equal(strings.Encode(text), arrays.Encode(text));
        Assert.Equal([263], arrays.Encode(" hello"));
    }

    [Fact]
    public void Spells_spaces_newlines_and_non_ascii_in_the_byte_alphabet()
    {
        var tokenizer = Load(Gpt2Style());

        // "é" is C3 A9 and "\n" is 0A: with no merges for them each byte is its own token.
        Assert.Equal([0xC3, 0xA9], tokenizer.Encode("é"));
        Assert.Equal([97, 10, 98], tokenizer.Encode("a\nb"));
        Assert.Equal("é", tokenizer.Decode([0xC3, 0xA9]));
    }

    [Fact]
    public void Round_trips_varied_text()
    {
        var gpt2 = Load(Gpt2Style());
        var llama3 = Load(Llama3Style());
        var smol = Load(SmolLM2Style());

        foreach (var tokenizer in new[] { gpt2, llama3, smol })
        {
            foreach (string text in Llama2cTokenizerTests.VariedTexts)
                Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        }
    }

    [Fact]
    public void Llama3_style_adds_bos_from_the_template_and_cuts_out_special_tokens()
    {
        var tokenizer = Load(Llama3Style());

        Assert.Equal(BeginOfText, tokenizer.BosId);
        Assert.Equal(EndOfText, tokenizer.EosId);
        Assert.Equal(303, tokenizer.VocabSize);
        // The Llama 3 regex keeps the space with the word: " hello" → Ġhello; specials are cut out first.
        int[] ids = tokenizer.Encode("the<|eot_id|> hello");
        Assert.Equal([BeginOfText, 116, 257, EndOfTurn, 263], ids);
        Assert.Equal([116, 257], tokenizer.Encode("the", addBos: false));
        // Special tokens produce no text.
        Assert.Equal("the hello", tokenizer.Decode(ids));
    }

    [Fact]
    public void Llama3_style_splits_numbers_in_threes_and_ignore_merges_takes_whole_vocabulary_words()
    {
        var tokenizer = Load(Llama3Style());

        // "12345" → "123" "45"; "123" is a vocabulary token with no merge path, which ignore_merges takes whole.
        Assert.Equal([BeginOfText, 299, 52, 53], tokenizer.Encode("12345"));
        var withoutIgnoreMerges = Load(Llama3Style(ignoreMerges: false));
        Assert.Equal([BeginOfText, 49, 50, 51, 52, 53], withoutIgnoreMerges.Encode("12345"));
    }

    [Fact]
    public void SmolLM2_style_isolates_digits_and_has_no_bos()
    {
        var tokenizer = Load(SmolLM2Style());

        Assert.Equal(-1, tokenizer.BosId);
        Assert.Equal(EndOfText, tokenizer.EosId);
        // Digits splits "the 2024" into "the ", "2", "0", "2", "4"; GPT-2's regex then splits "the " into "the", " ".
        Assert.Equal([116, 257, 32, 50, 48, 50, 52], tokenizer.Encode("the 2024"));
    }

    [Fact]
    public void Non_special_added_tokens_are_matched_and_decode_to_their_text()
    {
        var tokenizer = Load(SmolLM2Style());

        int[] ids = tokenizer.Encode("<think>the<|endoftext|>");

        Assert.Equal([Think, 116, 257, EndOfText], ids);
        Assert.Equal("<think>the", tokenizer.Decode(ids));
        Assert.False(tokenizer.AddedTokens["<think>"].Special);
    }

    [Fact]
    public void Added_tokens_match_leftmost_first_and_longest_at_one_position()
    {
        var json = SmolLM2Style();
        // "<think>" is a prefix of "<think>x"; "k>x" starts inside it, later than both.
        json["added_tokens"]!.AsArray().Add(AddedToken(304, "<think>x", special: false));
        json["added_tokens"]!.AsArray().Add(AddedToken(305, "k>x", special: false));
        var tokenizer = Load(json);

        Assert.Equal([304, 116, 303, 257], tokenizer.Encode("<think>xt<think>he"));
        Assert.Equal([303, 305], tokenizer.Encode("<think>k>x"));
    }

    [Fact]
    public void A_merge_given_twice_takes_its_last_rank_as_hugging_faces_merge_map_does()
    {
        var json = Gpt2Style();
        var tokenizer = Load(json);
        ((JsonArray)json["model"]!["merges"]!).Add("l l");
        var repeated = Load(json);

        // "l l" (rank 3) merges before "e l" (rank 4); repeated at rank 8, it comes after.
        Assert.Equal([101, 259], tokenizer.Encode("ell", addBos: false));
        Assert.Equal([260, 108], repeated.Encode("ell", addBos: false));
    }

    [Fact]
    public void A_long_added_token_costs_memory_linear_in_its_length()
    {
        // A regex alternation of the added tokens allocated 580 MB to build for this one (a fuzz finding).
        string longToken = string.Concat(Enumerable.Repeat("<|im_end|>", 3800));
        var json = SmolLM2Style();
        json["added_tokens"]!.AsArray().Add(AddedToken(304, longToken, special: false));

        long before = GC.GetAllocatedBytesForCurrentThread();
        var tokenizer = Load(json);
        int[] ids = tokenizer.Encode("the" + longToken + "<|endoftext|>");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal([116, 257, 304, EndOfText], ids);
        Assert.True(allocated < 16 << 20, $"loading and encoding allocated {allocated} bytes");
    }

    [Fact]
    public void A_pre_tokenizer_pattern_past_its_length_limit_is_refused()
    {
        var json = SmolLM2Style();
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["String"] = string.Concat(Enumerable.Repeat("<|x|>", 1000)) }, ["behavior"] = "Isolated", ["invert"] = false },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true }),
        };

        var error = Assert.Throws<ModelFormatException>(() => Load(json));

        Assert.Contains($"pre_tokenizer.pretokenizers[0].pattern is 7000 characters (escaped), more than the {InputFileLimits.PatternChars}", error.Message);
    }

    [Fact]
    public void Add_prefix_space_gives_the_first_word_a_space()
    {
        var tokenizer = Load(Gpt2Style(addPrefixSpace: true));

        Assert.Equal([263], tokenizer.Encode("hello"));
        Assert.Equal([263], tokenizer.Encode(" hello"));
    }

    [Fact]
    public void Applies_the_nfc_normalizer_where_the_runtime_has_normalization_data()
    {
        var json = Gpt2Style();
        json["normalizer"] = new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray(new JsonObject { ["type"] = "NFC" }) };
        var tokenizer = Load(json);
        string decomposed = "he\u0301";
        // With InvariantGlobalization, as this repository builds, .NET has no normalization data and
        // string.Normalize returns non-ASCII text unchanged.
        bool runtimeNormalizes = decomposed.Normalize(System.Text.NormalizationForm.FormC) != decomposed;

        int[] ids = tokenizer.Encode(decomposed);

        // NFC makes "hé": h, then é's bytes C3 A9. Unnormalized, "he" merges and U+0301 is CC 81.
        Assert.Equal(runtimeNormalizes ? [104, 0xC3, 0xA9] : [257, 0xCC, 0x81], ids);
        Assert.Equal([257, 0xCC, 0x81], Load(Gpt2Style()).Encode(decomposed));
    }

    [Theory]
    [InlineData("Lowercase")]
    [InlineData("Replace")]
    public void Normalizers_other_than_unicode_normal_forms_are_refused(string type)
    {
        var json = Gpt2Style();
        json["normalizer"] = new JsonObject { ["type"] = type };

        var error = Assert.Throws<ModelFormatException>(() => Load(json));

        Assert.Contains($"normalizer.type \"{type}\" is not supported", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Roberta_processing_gives_bos_and_eos()
    {
        var json = Gpt2Style();
        json["post_processor"] = new JsonObject
        {
            ["type"] = "RobertaProcessing",
            ["sep"] = new JsonArray("<|end_of_text|>", EndOfText),
            ["cls"] = new JsonArray("<|begin_of_text|>", BeginOfText),
        };
        json["added_tokens"] = AddedTokens();

        var tokenizer = Load(json);

        Assert.Equal(BeginOfText, tokenizer.BosId);
        Assert.Equal(EndOfText, tokenizer.EosId);
    }

    [Fact]
    public void Without_a_post_processor_or_end_token_bos_and_eos_are_absent()
    {
        var json = Gpt2Style();
        json.Remove("post_processor");

        var tokenizer = Load(json);

        Assert.Equal(-1, tokenizer.BosId);
        Assert.Equal(-1, tokenizer.EosId);
        Assert.Equal([116, 257], tokenizer.Encode("the"));
        Assert.Empty(tokenizer.Encode(""));
    }

    [Fact]
    public void Rejects_an_id_that_names_no_token()
    {
        var tokenizer = Load(Llama3Style());

        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([tokenizer.VocabSize]));
        // 264..298 are holes between the merged tokens and "123".
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([270]));
    }

    [Fact]
    public void Json_that_does_not_parse_is_reported_with_its_line()
    {
        string path = Path.Combine(_folder, "tokenizer.json");
        File.WriteAllText(path, "{\n  \"model\": {\n    \"type\": \"BPE\",,\n  }\n}\n");

        var error = Assert.Throws<ModelFormatException>(() => HuggingFaceBpeTokenizer.Load(path));

        Assert.Equal(path, error.File);
        Assert.Contains("not valid JSON at line 3", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Unigram")]
    [InlineData("WordPiece")]
    [InlineData("WordLevel")]
    public void Other_model_types_are_refused(string type)
    {
        var json = Gpt2Style();
        json["model"]!["type"] = type;

        var error = Assert.Throws<ModelFormatException>(() => Load(json));

        Assert.Contains($"model.type is \"{type}\": only BPE", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_merge_of_a_token_missing_from_the_vocabulary_is_refused()
    {
        var unknownPart = Gpt2Style();
        ((JsonArray)unknownPart["model"]!["merges"]!).Add("xyz w");
        var error = Assert.Throws<ModelFormatException>(() => Load(unknownPart));
        Assert.Contains("model.merges[8] (\"xyz\" \"w\") uses \"xyz\", which is not in model.vocab", error.Message, StringComparison.Ordinal);

        var unknownResult = Gpt2Style(arrayMerges: true);
        ((JsonArray)unknownResult["model"]!["merges"]!).Add(new JsonArray("q", "z"));
        error = Assert.Throws<ModelFormatException>(() => Load(unknownResult));
        Assert.Contains("uses \"qz\", which is not in model.vocab", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_merge_is_refused()
    {
        var json = Gpt2Style();
        ((JsonArray)json["model"]!["merges"]!).Add("a b c");

        var error = Assert.Throws<ModelFormatException>(() => Load(json));

        Assert.Contains("model.merges[8]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tokenizer_that_is_not_byte_level_is_refused()
    {
        // Llama 2's tokenizer.json: SentencePiece-style BPE, Metaspace-like normalizer, byte fallback.
        var sentencePieceStyle = Gpt2Style();
        sentencePieceStyle["model"]!["byte_fallback"] = true;
        Assert.Contains("byte_fallback", Assert.Throws<ModelFormatException>(() => Load(sentencePieceStyle)).Message, StringComparison.Ordinal);

        var noByteLevel = Gpt2Style();
        noByteLevel["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁" };
        Assert.Contains("ByteLevel", Assert.Throws<ModelFormatException>(() => Load(noByteLevel)).Message, StringComparison.Ordinal);

        var missingBytes = Gpt2Style();
        ((JsonObject)missingBytes["model"]!["vocab"]!).Remove("Ġ");
        Assert.Contains("byte 0x20", Assert.Throws<ModelFormatException>(() => Load(missingBytes)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_pre_tokenizer_parts_are_refused_by_name()
    {
        var merged = Llama3Style();
        merged["pre_tokenizer"]!["pretokenizers"]![0]!["behavior"] = "MergedWithPrevious";
        Assert.Contains("pre_tokenizer.pretokenizers[0].behavior \"MergedWithPrevious\"",
            Assert.Throws<ModelFormatException>(() => Load(merged)).Message, StringComparison.Ordinal);

        var badRegex = Llama3Style();
        badRegex["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"]!["Regex"] = "(unclosed";
        Assert.Contains("does not compile", Assert.Throws<ModelFormatException>(() => Load(badRegex)).Message, StringComparison.Ordinal);
    }

    private HuggingFaceBpeTokenizer Load(JsonObject json)
    {
        string path = Path.Combine(_folder, $"tokenizer-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json.ToJsonString());
        return HuggingFaceBpeTokenizer.Load(path);
    }

    /// <summary>GPT-2 layout: ByteLevel with its own regex, a ByteLevel post-processor (no BOS).</summary>
    internal static JsonObject Gpt2Style(bool arrayMerges = false, bool addPrefixSpace = false)
    {
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++)
            vocab[ByteSymbol(b)] = b;
        foreach (var (left, right, id) in Merges)
            vocab[left + right] = id;
        var merges = new JsonArray(Merges.Select(m => arrayMerges ? (JsonNode)new JsonArray(m.Left, m.Right) : m.Left + " " + m.Right).ToArray());
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = addPrefixSpace, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["vocab"] = vocab,
                ["merges"] = merges,
            },
        };
    }

    /// <summary>Llama 3 layout: Split(regex) then ByteLevel without regex, a template adding BOS, ignore_merges, and "123" in the vocabulary.</summary>
    private static JsonObject Llama3Style(bool ignoreMerges = true)
    {
        var json = Gpt2Style(arrayMerges: true);
        json["added_tokens"] = AddedTokens();
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = Llama3Pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
        };
        json["post_processor"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["processors"] = new JsonArray(
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
                new JsonObject
                {
                    ["type"] = "TemplateProcessing",
                    ["single"] = new JsonArray(
                        new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["type_id"] = 0 } },
                        new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                    ["special_tokens"] = new JsonObject
                    {
                        ["<|begin_of_text|>"] = new JsonObject { ["id"] = "<|begin_of_text|>", ["ids"] = new JsonArray(BeginOfText), ["tokens"] = new JsonArray("<|begin_of_text|>") },
                    },
                }),
        };
        json["model"]!["ignore_merges"] = ignoreMerges;
        json["model"]!["vocab"]!["123"] = 299;
        return json;
    }

    /// <summary>SmolLM2 layout: Digits(individual) then ByteLevel with GPT-2's regex, no BOS, a non-special added token.</summary>
    private static JsonObject SmolLM2Style()
    {
        var json = Gpt2Style();
        json["added_tokens"] = new JsonArray(AddedToken(EndOfText, "<|endoftext|>", special: true), AddedToken(Think, "<think>", special: false));
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Digits", ["individual_digits"] = true },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true }),
        };
        return json;
    }

    private static JsonArray AddedTokens() => new(
        AddedToken(BeginOfText, "<|begin_of_text|>", special: true),
        AddedToken(EndOfText, "<|end_of_text|>", special: true),
        AddedToken(EndOfTurn, "<|eot_id|>", special: true));

    private static JsonObject AddedToken(int id, string content, bool special) => new()
    {
        ["id"] = id,
        ["content"] = content,
        ["single_word"] = false,
        ["lstrip"] = false,
        ["rstrip"] = false,
        ["normalized"] = false,
        ["special"] = special,
    };

    /// <summary>GPT-2's byte alphabet, written out independently of the code under test.</summary>
    internal static string ByteSymbol(int b)
    {
        bool printable = b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
        if (printable)
            return ((char)b).ToString();
        int substitutesBefore = Enumerable.Range(0, b).Count(x => !(x is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF));
        return ((char)(0x100 + substitutesBefore)).ToString();
    }
}
