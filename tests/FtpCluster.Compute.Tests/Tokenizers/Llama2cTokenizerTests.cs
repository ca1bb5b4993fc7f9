using System.Text;
using System.Text.Json;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tokenizers;
using Xunit;

namespace FtpCluster.Compute.Tests.Tokenizers;

public sealed class Llama2cTokenizerTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("llama2c-tokenizer-tests").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    internal static readonly string[] VariedTexts =
    [
        "Hello world",
        "The quick brown fox jumps over the lazy dog.",
        "  two  leading spaces and   three inside",
        "trailing space ",
        "line one\nline two\n\ttabbed",
        "3.14159, 42, 1,000,000 and -7e-3",
        "Punctuation!? (parens) [brackets] {braces} \"quotes\" 'single' --- ...",
        "héllo café naïve résumé",
        "Привет, мир",
        "你好，世界",
        "emoji 🙂👍🏽 and ❤️",
        "a",
        " ",
        EqualScoreRunsText,
    ];

    /// <summary>Runs of one character make equal-score pairs side by side, where only the leftmost rule decides.</summary>
    internal const string EqualScoreRunsText = "Hmmm... ssssss ===== llll";

    /// <summary>Llama 2 ids of <see cref="EqualScoreRunsText"/> from SentencePiece 0.1.97 itself (Python, tokenizer.model, BOS added).</summary>
    internal static readonly int[] EqualScoreRunsSentencePieceIds = [1, 28756, 29885, 856, 269, 893, 893, 29879, 1275, 25512, 301, 645, 29880];

    [SharedModelsFact]
    public void Encodes_the_golden_prompt_exactly()
    {
        var golden = Golden();
        var tokenizer = Llama2cTokenizer.Load(SharedModels.PathTo("aidreams260K", "tok512.bin"), 512);

        int[] ids = tokenizer.Encode(golden.GetProperty("prompt").GetString()!);

        Assert.Equal(golden.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()), ids);
    }

    [SharedModelsFact]
    public void Decodes_the_golden_greedy_ids_to_the_golden_text()
    {
        // The golden text is llama2.c's output for BOS + prompt + continuation: it starts with the prompt
        // without its dummy leading space, which decode drops from the token after BOS.
        var golden = Golden();
        var tokenizer = Llama2cTokenizer.Load(SharedModels.PathTo("aidreams260K", "tok512.bin"), 512);
        int[] ids = golden.GetProperty("greedy_60_steps_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();

        string text = tokenizer.Decode(ids);

        Assert.Equal(golden.GetProperty("greedy_60_steps_text").GetString(), text);
        Assert.StartsWith(golden.GetProperty("prompt").GetString()!, text, StringComparison.Ordinal);
    }

    [SharedModelsFact]
    public void Round_trips_varied_text_with_both_shared_vocabularies()
    {
        var tiny = Llama2cTokenizer.Load(SharedModels.PathTo("aidreams260K", "tok512.bin"), 512);
        var llama2 = Llama2cTokenizer.Load(SharedModels.PathTo("llama2-tokenizer", "tokenizer.bin"), 32000);

        foreach (var tokenizer in new[] { tiny, llama2 })
        {
            foreach (string text in VariedTexts)
            {
                Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
                Assert.Equal(" " + text, tokenizer.Decode(tokenizer.Encode(text, addBos: false)));
            }
        }
    }

    [SharedModelsFact]
    public void Merges_exactly_as_the_quadratic_llama2c_loop_does()
    {
        var llama2 = Llama2cTokenizer.Load(SharedModels.PathTo("llama2-tokenizer", "tokenizer.bin"), 32000);
        var tiny = Llama2cTokenizer.Load(SharedModels.PathTo("aidreams260K", "tok512.bin"), 512);
        string longText = string.Concat(Enumerable.Repeat("It was a dark and stormy night; the rain fell in torrents. ", 20));

        foreach (var tokenizer in new[] { tiny, llama2 })
        {
            foreach (string text in VariedTexts.Append(longText))
                Assert.Equal(ReferenceEncode(tokenizer, text), tokenizer.Encode(text));
        }
    }

    [SharedModelsFact]
    public void Breaks_equal_score_ties_leftmost_as_sentencepiece_does()
    {
        var llama2 = Llama2cTokenizer.Load(SharedModels.PathTo("llama2-tokenizer", "tokenizer.bin"), 32000);

        Assert.Equal(EqualScoreRunsSentencePieceIds, llama2.Encode(EqualScoreRunsText));
    }

    [SharedModelsFact]
    public void Reads_to_the_end_of_the_file_when_no_vocabulary_size_is_given()
    {
        var tokenizer = Llama2cTokenizer.Load(SharedModels.PathTo("llama2-tokenizer", "tokenizer.bin"));

        Assert.Equal(32000, tokenizer.VocabSize);
        Assert.Equal(27, tokenizer.MaxTokenLength);
    }

    [Fact]
    public void Merges_the_best_scoring_pair_first_and_the_leftmost_on_ties()
    {
        // Symbols of "abc": [" ", a, b, c]. "ab" and "bc" both score 1: the leftmost, "ab", merges first,
        // leaving [" ", ab, c]; "abc" is no token, so nothing more merges.
        var tie = Build(("a", -10), ("b", -10), ("c", -10), ("ab", 1), ("bc", 1));
        Assert.Equal(new[] { 1, Id(tie, " "), Id(tie, "ab"), Id(tie, "c") }, tie.Encode("abc"));

        // With "bc" scoring higher it merges first even though "ab" is further left.
        var better = Build(("a", -10), ("b", -10), ("c", -10), ("ab", 1), ("bc", 2));
        Assert.Equal(new[] { Id(better, " "), Id(better, "a"), Id(better, "bc") }, better.Encode("abc", addBos: false));

        // Merged symbols merge again: "ab" then "ab"+"c" = "abc", then " "+"abc" = " abc".
        var chain = Build(("a", -10), ("b", -10), ("c", -10), ("ab", 1), ("abc", 0), (" abc", -1));
        Assert.Equal(new[] { 1, Id(chain, " abc") }, chain.Encode("abc"));
    }

    [Fact]
    public void Never_merges_pairs_scoring_at_or_below_llama2c_starting_score()
    {
        var tokenizer = Build(("a", -10), ("b", -10), ("ab", -1e10f));

        Assert.Equal(new[] { Id(tokenizer, " "), Id(tokenizer, "a"), Id(tokenizer, "b") }, tokenizer.Encode("ab", addBos: false));
    }

    [Fact]
    public void Falls_back_to_byte_tokens_and_decodes_characters_split_across_them()
    {
        var tokenizer = Build(("a", -10));

        // "é" has no token: its UTF-8 bytes C3 A9 become the byte tokens 0xC3 + 3 and 0xA9 + 3.
        int[] ids = tokenizer.Encode("aé");

        Assert.Equal(new[] { 1, Id(tokenizer, " "), Id(tokenizer, "a"), 0xC3 + 3, 0xA9 + 3 }, ids);
        Assert.Equal("aé", tokenizer.Decode(ids));
        Assert.Equal("é", tokenizer.Decode([0xC3 + 3, 0xA9 + 3]));
    }

    [Fact]
    public void Encodes_empty_text_as_bos_alone_without_the_dummy_space()
    {
        var tokenizer = Build(("a", -10));

        Assert.Equal(1, Assert.Single(tokenizer.Encode("")));
        Assert.Empty(tokenizer.Encode("", addBos: false));
    }

    [Fact]
    public void Drops_the_leading_space_only_after_bos_and_writes_no_text_for_bos_and_eos()
    {
        var tokenizer = Build(("a", -10), (" a", 0));
        int spaceA = Id(tokenizer, " a");

        Assert.Equal("a", tokenizer.Decode([1, spaceA]));
        Assert.Equal(" a", tokenizer.Decode([spaceA]));
        Assert.Equal("a a", tokenizer.Decode([1, spaceA, 2, spaceA]));
        Assert.Equal("aa", tokenizer.Decode([1, spaceA, 2, 1, spaceA]));
    }

    [Fact]
    public void Rejects_an_id_outside_the_vocabulary()
    {
        var tokenizer = Build(("a", -10));

        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([tokenizer.VocabSize]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([-1]));
    }

    [Fact]
    public void A_truncated_file_names_the_file_and_the_entry()
    {
        string path = Write("truncated.bin", ("a", -10), ("b", -10));
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^1]);
        int lastEntry = ControlAndByteAndSpaceTokens + 2 - 1;

        var error = Assert.Throws<ModelFormatException>(() => Llama2cTokenizer.Load(path, lastEntry + 1));

        Assert.Equal(path, error.File);
        Assert.Contains($"file ends inside token entry {lastEntry} of the {lastEntry + 1}", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_vocabulary_size_that_does_not_match_the_file_is_an_error()
    {
        string path = Write("tokenizer.bin", ("a", -10), ("b", -10));
        int tokens = ControlAndByteAndSpaceTokens + 2;

        var tooMany = Assert.Throws<ModelFormatException>(() => Llama2cTokenizer.Load(path, tokens + 1));
        Assert.Contains($"token entry {tokens} of the {tokens + 1}", tooMany.Message, StringComparison.Ordinal);

        var tooFew = Assert.Throws<ModelFormatException>(() => Llama2cTokenizer.Load(path, tokens - 1));
        Assert.Contains($"more than the model's {tokens - 1} tokens", tooFew.Message, StringComparison.Ordinal);

        Assert.Equal(tokens, Llama2cTokenizer.Load(path, tokens).VocabSize);
    }

    [Fact]
    public void A_negative_token_length_is_an_error()
    {
        string path = Path.Combine(_folder, "negative.bin");
        using (var writer = new BinaryWriter(File.Create(path)))
        {
            writer.Write(4);
            writer.Write(0f);
            writer.Write(-5);
        }

        var error = Assert.Throws<ModelFormatException>(() => Llama2cTokenizer.Load(path));

        Assert.Contains("token entry 0 has a negative length -5", error.Message, StringComparison.Ordinal);
    }

    /// <summary>llama2.c's encode, literally: rescan for the best pair after every merge.</summary>
    private static int[] ReferenceEncode(Llama2cTokenizer tokenizer, string text)
    {
        var byPiece = new Dictionary<string, int>();
        for (int id = 0; id < tokenizer.VocabSize; id++)
            byPiece.TryAdd(Encoding.Latin1.GetString(tokenizer.Piece(id)), id);
        var tokens = new List<int> { 1 };
        if (text.Length > 0)
            tokens.Add(byPiece[" "]);
        foreach (Rune rune in text.EnumerateRunes())
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(rune.ToString());
            if (byPiece.TryGetValue(Encoding.Latin1.GetString(utf8), out int id))
                tokens.Add(id);
            else
                tokens.AddRange(utf8.Select(b => b + 3));
        }
        while (true)
        {
            float bestScore = -1e10f;
            int bestId = -1, bestIndex = -1;
            for (int i = 0; i + 1 < tokens.Count; i++)
            {
                string pair = Encoding.Latin1.GetString([.. tokenizer.Piece(tokens[i]), .. tokenizer.Piece(tokens[i + 1])]);
                if (byPiece.TryGetValue(pair, out int id) && tokenizer.Score(id) > bestScore)
                    (bestScore, bestId, bestIndex) = (tokenizer.Score(id), id, i);
            }
            if (bestIndex < 0)
                return tokens.ToArray();
            tokens[bestIndex] = bestId;
            tokens.RemoveAt(bestIndex + 1);
        }
    }

    private static int Id(Llama2cTokenizer tokenizer, string piece)
    {
        byte[] wanted = Encoding.UTF8.GetBytes(piece);
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            if (tokenizer.Piece(id).SequenceEqual(wanted))
                return id;
        }
        throw new ArgumentException($"no token '{piece}'", nameof(piece));
    }

    private Llama2cTokenizer Build(params (string Piece, float Score)[] extra) =>
        Llama2cTokenizer.Load(Write($"vocab-{Guid.NewGuid():N}.bin", extra));

    private const int ControlAndByteAndSpaceTokens = 3 + 256 + 1;

    /// <summary>A llama2.c tokenizer file laid out as llama2.c's export: control tokens, 256 byte tokens, " ", then <paramref name="extra"/>.</summary>
    internal string Write(string name, params (string Piece, float Score)[] extra)
    {
        var entries = new List<(string Piece, float Score)> { ("<unk>", 0), ("\n<s>\n", 0), ("\n</s>\n", 0) };
        entries.AddRange(Enumerable.Range(0, 256).Select(b => ($"<0x{b:X2}>", 0f)));
        entries.Add((" ", -1e9f));
        entries.AddRange(extra);
        string path = Path.Combine(_folder, name);
        using var writer = new BinaryWriter(File.Create(path));
        writer.Write(entries.Max(e => Encoding.UTF8.GetByteCount(e.Piece)));
        foreach (var (piece, score) in entries)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(piece);
            writer.Write(score);
            writer.Write(bytes.Length);
            writer.Write(bytes);
        }
        return path;
    }

    private static JsonElement Golden()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(SharedModels.PathTo("golden.json")));
        return document.RootElement.GetProperty("aidreams260K").Clone();
    }
}
