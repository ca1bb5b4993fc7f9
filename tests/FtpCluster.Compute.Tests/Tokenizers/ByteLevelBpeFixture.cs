using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Tests.Tokenizers;

/// <summary>
/// A byte-level BPE vocabulary made here, written both as a Hugging Face tokenizer.json and as GGUF metadata, in
/// the layouts of real models (GPT-2, Llama 3, Qwen2, SmolLM2). Its merges are learned from
/// <see cref="TrainingText"/> by counting pairs, so they are many and realistic (spaces, newlines, digits, common
/// words) rather than hand-picked. Ids: the 256 byte symbols in byte order, the merged tokens in merge order,
/// "789" (a token no merge makes, for ignore_merges), then the layout's added tokens.
/// </summary>
internal sealed class ByteLevelBpeFixture
{
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private const int MergeCount = 300;

    /// <summary>A vocabulary token that no merge makes: only Llama 3's ignore_merges produces it, whole.</summary>
    public const string UnmergeableToken = "789";

    private static readonly string TrainingText = string.Join("\n", Llama2cTokenizerTests.VariedTexts) + """

        The pipeline splits the model into stages, and each stage holds a slice of the layers.
        When the first stage has computed its layers, it sends the hidden states to the next one.
        Tokens that the model does not need are pruned: the tokens that remain are the ones that matter.
        In 2024 there were 1,000 requests per second; in 2025 there were 3,141 of them, at 59.26 ms each.
        def forward(self, x):
            return self.layers(x) + x  # the residual stream
        """;

    /// <summary>The merges learned from the training text, in rank order, as (left, right).</summary>
    private static readonly Lazy<List<(string Left, string Right)>> LearnedMerges = new(() => Learn(TrainingText, MergeCount));

    private ByteLevelBpeFixture(string layout, string ggufPre, List<(string Content, bool Special)> added)
    {
        Layout = layout;
        GgufPreTokenizer = ggufPre;
        Tokens = [.. Enumerable.Range(0, 256).Select(HuggingFaceBpeTokenizerTests.ByteSymbol)];
        foreach (var (left, right) in LearnedMerges.Value)
            Tokens.Add(left + right);
        Tokens.Add(UnmergeableToken);
        AddedTokens = [];
        foreach (var (content, special) in added)
        {
            AddedTokens.Add((Tokens.Count, content, special));
            Tokens.Add(content);
        }
    }

    public string Layout { get; }
    public string GgufPreTokenizer { get; }

    /// <summary>Every token, by id.</summary>
    public List<string> Tokens { get; }

    public List<(int Id, string Content, bool Special)> AddedTokens { get; }

    public int IdOf(string token) => Tokens.IndexOf(token);

    public static IEnumerable<string> Layouts => ["gpt-2", "llama3", "qwen2", "smollm"];

    public static ByteLevelBpeFixture Create(string layout) => layout switch
    {
        "gpt-2" => new(layout, "gpt-2", []),
        "llama3" => new(layout, "llama3", [("<|begin_of_text|>", true), ("<|end_of_text|>", true), ("<|eot_id|>", true)]),
        "qwen2" => new(layout, "qwen2", [("<|endoftext|>", true), ("<|im_start|>", true), ("<|im_end|>", true)]),
        "smollm" => new(layout, "smollm", [("<|endoftext|>", true), ("<think>", false)]),
        _ => throw new ArgumentException($"unknown layout {layout}", nameof(layout)),
    };

    /// <summary>
    /// The GGUF metadata llama.cpp's converter would write for this tokenizer: special added tokens as control
    /// tokens, others as user-defined; BOS only for Llama 3, whose pre-tokenizer adds it by default (so the flag is
    /// left out to test that default); EOS the end-of-text token.
    /// </summary>
    public GgufVocabulary ToGguf() => new()
    {
        Model = "gpt2",
        PreTokenizer = GgufPreTokenizer,
        Tokens = Tokens,
        TokenTypes = Tokens.Select((_, id) => AddedTokens.FirstOrDefault(a => a.Id == id) is { Content: not null } a
            ? a.Special ? GgufTokenType.Control : GgufTokenType.UserDefined
            : GgufTokenType.Normal).ToArray(),
        Merges = LearnedMerges.Value.Select(m => $"{m.Left} {m.Right}").ToArray(),
        BosId = Layout == "llama3" ? IdOf("<|begin_of_text|>") : null,
        AddBos = Layout == "llama3" ? null : false,
        EosId = Layout switch { "llama3" => IdOf("<|end_of_text|>"), "qwen2" or "smollm" => IdOf("<|endoftext|>"), _ => null },
    };

    /// <summary>The tokenizer.json the model would ship, in the layout's shape.</summary>
    public JsonObject ToTokenizerJson()
    {
        var vocab = new JsonObject();
        for (int id = 0; id < Tokens.Count; id++)
        {
            if (!AddedTokens.Any(a => a.Id == id))
                vocab[Tokens[id]] = id;
        }
        JsonNode ByteLevel(bool useRegex) => new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = useRegex };
        JsonNode Split(string pattern) => new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated", ["invert"] = false };
        JsonNode Sequence(params JsonNode[] steps) => new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = new JsonArray(steps) };
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray([.. AddedTokens.Select(a => (JsonNode)new JsonObject
            {
                ["id"] = a.Id, ["content"] = a.Content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = a.Special,
            })]),
            ["normalizer"] = Layout == "qwen2" ? new JsonObject { ["type"] = "NFC" } : null,
            ["pre_tokenizer"] = Layout switch
            {
                "gpt-2" => ByteLevel(useRegex: true),
                "llama3" => Sequence(Split(Llama3Pattern), ByteLevel(useRegex: false)),
                "qwen2" => Sequence(Split(Qwen2Pattern), ByteLevel(useRegex: false)),
                _ => Sequence(new JsonObject { ["type"] = "Digits", ["individual_digits"] = true }, ByteLevel(useRegex: true)),
            },
            ["post_processor"] = Layout == "llama3" ? BosTemplate("<|begin_of_text|>") : ByteLevel(useRegex: true),
            ["decoder"] = ByteLevel(useRegex: true),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["byte_fallback"] = false,
                ["ignore_merges"] = Layout == "llama3",
                ["vocab"] = vocab,
                ["merges"] = new JsonArray([.. LearnedMerges.Value.Select(m => (JsonNode)new JsonArray(m.Left, m.Right))]),
            },
        };
        return json;
    }

    private JsonObject BosTemplate(string bos) => new()
    {
        ["type"] = "TemplateProcessing",
        ["single"] = new JsonArray(
            new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = bos, ["type_id"] = 0 } },
            new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
        ["special_tokens"] = new JsonObject
        {
            [bos] = new JsonObject { ["id"] = bos, ["ids"] = new JsonArray(IdOf(bos)), ["tokens"] = new JsonArray(bos) },
        },
    };

    /// <summary>
    /// Byte-pair learning: split the text with GPT-2's pattern, spell each piece in the byte alphabet, then merge
    /// the most frequent adjacent pair (ties: the ordinal-smallest pair) <paramref name="count"/> times.
    /// </summary>
    private static List<(string Left, string Right)> Learn(string text, int count)
    {
        var words = Regex.Matches(text, Gpt2Pattern).Select(m => Encoding.UTF8.GetBytes(m.Value).Select(b => HuggingFaceBpeTokenizerTests.ByteSymbol(b)).ToList()).ToList();
        var merges = new List<(string, string)>();
        var seen = new HashSet<string>(Enumerable.Range(0, 256).Select(HuggingFaceBpeTokenizerTests.ByteSymbol), StringComparer.Ordinal);
        while (merges.Count < count)
        {
            var pairCounts = new Dictionary<(string, string), int>();
            foreach (var word in words)
            {
                for (int i = 0; i + 1 < word.Count; i++)
                    pairCounts[(word[i], word[i + 1])] = pairCounts.GetValueOrDefault((word[i], word[i + 1])) + 1;
            }
            var candidates = pairCounts.Where(p => !seen.Contains(p.Key.Item1 + p.Key.Item2)).ToList();
            if (candidates.Count == 0)
                break;
            var best = candidates.OrderByDescending(p => p.Value).ThenBy(p => p.Key.Item1, StringComparer.Ordinal).ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First().Key;
            merges.Add(best);
            seen.Add(best.Item1 + best.Item2);
            foreach (var word in words)
            {
                for (int i = 0; i + 1 < word.Count; i++)
                {
                    if (word[i] == best.Item1 && word[i + 1] == best.Item2)
                    {
                        word[i] = best.Item1 + best.Item2;
                        word.RemoveAt(i + 1);
                    }
                }
            }
        }
        return merges;
    }
}
