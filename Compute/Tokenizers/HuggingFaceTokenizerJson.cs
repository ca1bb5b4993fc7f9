using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>One step of pre-tokenization: turns a piece of text into smaller pieces, in order.</summary>
internal abstract record PreTokenizerStep
{
    public abstract IEnumerable<string> Apply(string piece);
}

/// <summary>Splits at the pattern's matches, which become pieces of their own (the "Isolated" behaviour).</summary>
/// <param name="Pattern">Built by <see cref="InputFileLimits.FilePattern"/>, so a match that runs too long times out.</param>
/// <param name="Source">The tokenizer file the pattern came from, named when it times out.</param>
internal sealed record IsolatingSplit(Regex Pattern, string Source) : PreTokenizerStep
{
    public override IEnumerable<string> Apply(string piece)
    {
        int start = 0;
        foreach (Match match in Matches(piece))
        {
            if (match.Length == 0)
                continue;
            if (match.Index > start)
                yield return piece[start..match.Index];
            yield return match.Value;
            start = match.Index + match.Length;
        }
        if (start < piece.Length)
            yield return piece[start..];
    }

    /// <summary>Every match, found up front so that a timeout surfaces here, as the file's fault.</summary>
    private List<Match> Matches(string piece)
    {
        try
        {
            return [.. Pattern.Matches(piece).Cast<Match>()];
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new ModelFormatException(Source, null,
                $"the pre-tokenizer pattern {Pattern} ran longer than {InputFileLimits.RegexMatchTimeout.TotalMilliseconds} ms on a {piece.Length}-character piece of text: a pattern that backtracks without bound", e);
        }
    }
}

/// <summary>ByteLevel's add_prefix_space: a piece that does not start with a space gets one.</summary>
internal sealed record PrefixSpace : PreTokenizerStep
{
    public override IEnumerable<string> Apply(string piece)
    {
        yield return piece.StartsWith(' ') ? piece : " " + piece;
    }
}

/// <summary>What <see cref="HuggingFaceBpeTokenizer"/> needs from a tokenizer.json, checked.</summary>
internal sealed class HuggingFaceTokenizerSpec
{
    public required Dictionary<string, int> Vocab { get; init; }

    /// <summary>Merges in rank order, as "left right" (the form Microsoft.ML.Tokenizers' BpeOptions takes).</summary>
    public required List<string> Merges { get; init; }

    public required List<AddedToken> AddedTokens { get; init; }
    public required List<NormalizationForm> Normalizations { get; init; }
    public required List<PreTokenizerStep> PreTokenizerSteps { get; init; }

    /// <summary>model.ignore_merges (Llama 3): a pre-token that is itself in the vocabulary is one token, merges or not.</summary>
    public required bool IgnoreMerges { get; init; }

    public required int BosId { get; init; }
    public required int EosId { get; init; }
}

/// <summary>
/// Reads the parts of a Hugging Face tokenizer.json that byte-level BPE uses, and refuses, naming the
/// field, what it cannot honour rather than tokenizing differently from the model's training.
/// </summary>
internal static class HuggingFaceTokenizerJson
{
    /// <summary>ByteLevel's own split (use_regex), GPT-2's pattern.</summary>
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Tokens that end a document, most specific first, for vocabularies whose post-processor appends none.</summary>
    private static readonly string[] EndOfTextNames = ["<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|im_end|>", "<|eot_id|>"];

    public static HuggingFaceTokenizerSpec Read(string path)
    {
        if (!File.Exists(path))
            throw new ModelFormatException(path, null, "tokenizer file not found");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(InputFileLimits.ReadAllBytes(path, InputFileLimits.TokenizerJsonBytes, "tokenizer.json"));
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, null,
                $"not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1} of the line: {e.Message}", e);
        }
        using (document)
        {
            try
            {
                return new Reader(path).Read(document.RootElement);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                // JsonElement's getters throw these when a field holds another JSON type than the one read.
                throw new ModelFormatException(path, null, $"a field has an unexpected JSON type: {e.Message}", e);
            }
        }
    }

    private sealed class Reader(string path)
    {
        public HuggingFaceTokenizerSpec Read(JsonElement root)
        {
            if (root.ValueKind != JsonValueKind.Object)
                throw Problem("the top level is not a JSON object");
            JsonElement model = Optional(root, "model") ?? throw Problem("has no \"model\"");
            string modelType = Optional(model, "type")?.GetString() ?? (Optional(model, "merges") is null ? "(none)" : "BPE");
            if (modelType != "BPE")
                throw Problem($"model.type is \"{modelType}\": only BPE tokenizers are supported");
            CheckBpeOptions(model);

            // Decoding maps the byte alphabet back to bytes, which is what a ByteLevel decoder does.
            if (Optional(root, "decoder") is { } decoder && TypeOf(decoder, "decoder") != "ByteLevel")
                throw Problem($"decoder.type \"{TypeOf(decoder, "decoder")}\" is not supported (only ByteLevel)");

            var vocab = ReadVocab(model);
            var merges = ReadMerges(model, vocab);
            var addedTokens = ReadAddedTokens(root);
            var (bosId, templateEosId) = ReadPostProcessor(Optional(root, "post_processor"), "post_processor");
            return new HuggingFaceTokenizerSpec
            {
                Vocab = vocab,
                Merges = merges,
                AddedTokens = addedTokens,
                Normalizations = ReadNormalizer(Optional(root, "normalizer"), "normalizer"),
                PreTokenizerSteps = ReadPreTokenizer(Optional(root, "pre_tokenizer")),
                IgnoreMerges = Optional(model, "ignore_merges")?.GetBoolean() ?? false,
                BosId = bosId,
                EosId = templateEosId ?? FindEndOfText(addedTokens),
            };
        }

        private void CheckBpeOptions(JsonElement model)
        {
            if (Optional(model, "byte_fallback")?.GetBoolean() == true)
                throw Problem("model.byte_fallback is set: this is a SentencePiece-style BPE, which is not supported here (use its tokenizer.model)");
            // Byte-level vocabularies have neither: every subword is spelled in the byte alphabet as it is.
            foreach (string affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            {
                if (Optional(model, affix)?.GetString() is { Length: > 0 } value)
                    throw Problem($"model.{affix} is \"{value}\": not supported for byte-level BPE");
            }
            // model.dropout only randomises training-time merges; inference wants the deterministic ids, so it
            // is ignored. model.unk_token never applies: every byte has a token (checked in ReadVocab).
        }

        private Dictionary<string, int> ReadVocab(JsonElement model)
        {
            JsonElement vocabJson = Optional(model, "vocab") ?? throw Problem("model.vocab is missing");
            if (vocabJson.ValueKind != JsonValueKind.Object)
                throw Problem("model.vocab is not an object of token to id");
            var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
            var tokenOfId = new Dictionary<int, string>();
            foreach (JsonProperty entry in vocabJson.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                    throw Problem($"model.vocab[\"{entry.Name}\"] is {entry.Value}: not a token id");
                if (!tokenOfId.TryAdd(id, entry.Name))
                    throw Problem($"model.vocab gives id {id} to both \"{tokenOfId[id]}\" and \"{entry.Name}\"");
                if (!vocab.TryAdd(entry.Name, id))
                    throw Problem($"model.vocab lists \"{entry.Name}\" twice");
            }
            // Without all 256 byte symbols some text would have no tokens at all (the library would drop it).
            for (int b = 0; b < 256; b++)
            {
                char symbol = ByteLevelAlphabet.CharFor((byte)b);
                if (!vocab.ContainsKey(symbol.ToString()))
                    throw Problem($"model.vocab lacks \"{symbol}\", the byte-level symbol of byte 0x{b:X2}: not a byte-level BPE vocabulary");
            }
            return vocab;
        }

        private List<string> ReadMerges(JsonElement model, Dictionary<string, int> vocab)
        {
            JsonElement mergesJson = Optional(model, "merges") ?? throw Problem("model.merges is missing");
            if (mergesJson.ValueKind != JsonValueKind.Array)
                throw Problem("model.merges is not an array");
            var merges = new List<string>(mergesJson.GetArrayLength());
            int index = 0;
            foreach (JsonElement merge in mergesJson.EnumerateArray())
            {
                var (left, right) = ReadMergePair(merge, index);
                foreach (string part in new[] { left, right, left + right })
                {
                    if (!vocab.ContainsKey(part))
                        throw Problem($"model.merges[{index}] (\"{left}\" \"{right}\") uses \"{part}\", which is not in model.vocab");
                }
                // The library takes merges as "left right", so a space inside a token cannot be said (byte-level
                // vocabularies spell spaces as 'Ġ', so real files have none).
                if (left.Contains(' ', StringComparison.Ordinal) || right.Contains(' ', StringComparison.Ordinal))
                    throw Problem($"model.merges[{index}] (\"{left}\" \"{right}\") has a token containing a space: not supported");
                merges.Add($"{left} {right}");
                index++;
            }
            // A pair given twice takes its last rank, as Hugging Face's merge map does (the library refuses repeats).
            var lastRankOf = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int rank = 0; rank < merges.Count; rank++)
                lastRankOf[merges[rank]] = rank;
            return lastRankOf.Count == merges.Count ? merges : [.. merges.Where((merge, rank) => lastRankOf[merge] == rank)];
        }

        /// <summary>A merge as the string "left right" (older files) or the array ["left", "right"] (newer files).</summary>
        private (string Left, string Right) ReadMergePair(JsonElement merge, int index)
        {
            if (merge.ValueKind == JsonValueKind.String)
            {
                string[] parts = merge.GetString()!.Split(' ');
                if (parts.Length == 2 && parts[0].Length > 0 && parts[1].Length > 0)
                    return (parts[0], parts[1]);
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            {
                return (merge[0].GetString()!, merge[1].GetString()!);
            }
            throw Problem($"model.merges[{index}] is {merge}: expected \"left right\" or [\"left\", \"right\"]");
        }

        private List<AddedToken> ReadAddedTokens(JsonElement root)
        {
            var tokens = new List<AddedToken>();
            if (Optional(root, "added_tokens") is not { } array)
                return tokens;
            if (array.ValueKind != JsonValueKind.Array)
                throw Problem("added_tokens is not an array");
            int index = 0;
            foreach (JsonElement token in array.EnumerateArray())
            {
                if (Optional(token, "id") is not { ValueKind: JsonValueKind.Number } idJson || !idJson.TryGetInt32(out int id) || id < 0
                    || Optional(token, "content")?.GetString() is not { Length: > 0 } content)
                    throw Problem($"added_tokens[{index}] is {token}: expected an object with a non-negative \"id\" and a non-empty \"content\"");
                tokens.Add(new AddedToken(id, content, Optional(token, "special")?.GetBoolean() ?? false));
                index++;
            }
            return tokens;
        }

        private List<NormalizationForm> ReadNormalizer(JsonElement? normalizer, string where)
        {
            if (normalizer is not { } json)
                return [];
            string type = TypeOf(json, where);
            return type switch
            {
                "NFC" => [NormalizationForm.FormC],
                "NFD" => [NormalizationForm.FormD],
                "NFKC" => [NormalizationForm.FormKC],
                "NFKD" => [NormalizationForm.FormKD],
                "Sequence" => Items(json, "normalizers", where).SelectMany((n, i) => ReadNormalizer(n, $"{where}.normalizers[{i}]")).ToList(),
                _ => throw Problem($"{where}.type \"{type}\" is not supported (only Unicode normal forms)"),
            };
        }

        private List<PreTokenizerStep> ReadPreTokenizer(JsonElement? preTokenizer)
        {
            if (preTokenizer is not { } json)
                throw Problem("has no pre_tokenizer: not a byte-level BPE tokenizer (a ByteLevel pre-tokenizer is required)");
            var stages = TypeOf(json, "pre_tokenizer") == "Sequence"
                ? Items(json, "pretokenizers", "pre_tokenizer").Select((s, i) => (Json: s, Where: $"pre_tokenizer.pretokenizers[{i}]")).ToList()
                : [(Json: json, Where: "pre_tokenizer")];
            // The library maps text to the byte alphabet after all splitting, so ByteLevel must come last.
            if (TypeOf(stages[^1].Json, stages[^1].Where) != "ByteLevel")
                throw Problem("pre_tokenizer does not end with a ByteLevel step: only byte-level BPE tokenizers are supported");

            var steps = new List<PreTokenizerStep>();
            foreach (var (stage, where) in stages.SkipLast(1))
            {
                string type = TypeOf(stage, where);
                steps.Add(type switch
                {
                    "Split" => ReadSplit(stage, where),
                    // HF's Digits tests char::is_numeric, which is \p{N} but for a handful of rare code points.
                    "Digits" => new IsolatingSplit(Compile(Optional(stage, "individual_digits")?.GetBoolean() == true ? @"\p{N}" : @"\p{N}+", where), path),
                    _ => throw Problem($"{where}.type \"{type}\" is not supported (Split, Digits, then ByteLevel)"),
                });
            }
            JsonElement byteLevel = stages[^1].Json;
            if (Optional(byteLevel, "add_prefix_space")?.GetBoolean() == true)
                steps.Add(new PrefixSpace());
            if (Optional(byteLevel, "use_regex")?.GetBoolean() ?? true)
                steps.Add(new IsolatingSplit(Compile(Gpt2Pattern, stages[^1].Where), path));
            return steps;
        }

        private IsolatingSplit ReadSplit(JsonElement split, string where)
        {
            string behavior = Optional(split, "behavior")?.GetString() ?? "(none)";
            if (behavior != "Isolated")
                throw Problem($"{where}.behavior \"{behavior}\" is not supported (only Isolated)");
            if (Optional(split, "invert")?.GetBoolean() == true)
                throw Problem($"{where}.invert is not supported");
            JsonElement pattern = Optional(split, "pattern") ?? throw Problem($"{where}.pattern is missing");
            if (Optional(pattern, "Regex")?.GetString() is { } regex)
                return new IsolatingSplit(Compile(regex, where), path);
            if (Optional(pattern, "String")?.GetString() is { } literal)
                return new IsolatingSplit(Compile(Regex.Escape(literal), where), path);
            throw Problem($"{where}.pattern is {pattern}: expected {{\"Regex\": ...}} or {{\"String\": ...}}");
        }

        private Regex Compile(string pattern, string where)
        {
            // Building a regex costs memory quadratic in a literal's length (a 45 000-character pattern took 580 MB).
            if (pattern.Length > InputFileLimits.PatternChars)
                throw Problem($"{where}.pattern is {pattern.Length} characters (escaped), more than the {InputFileLimits.PatternChars} a pre-tokenizer pattern may have");
            try
            {
                return InputFileLimits.FilePattern(pattern);
            }
            catch (ArgumentException e)
            {
                throw new ModelFormatException(path, null, $"{where}: the pattern does not compile as a .NET regular expression: {e.Message}", e);
            }
        }

        /// <summary>BOS: the one special token the post-processor puts before the text; EOS: the first it puts after.</summary>
        private (int BosId, int? EosId) ReadPostProcessor(JsonElement? postProcessor, string where)
        {
            if (postProcessor is not { } json)
                return (-1, null);
            string type = TypeOf(json, where);
            switch (type)
            {
                case "ByteLevel":
                    return (-1, null);
                case "Sequence":
                    var found = Items(json, "processors", where).Select((p, i) => ReadPostProcessor(p, $"{where}.processors[{i}]")).ToList();
                    return (found.Select(f => f.BosId).FirstOrDefault(id => id >= 0, -1), found.Select(f => f.EosId).FirstOrDefault(id => id is not null));
                case "RobertaProcessing":
                    return (PairId(json, "cls", where), PairId(json, "sep", where));
                case "TemplateProcessing":
                    return ReadTemplate(json, where);
                default:
                    throw Problem($"{where}.type \"{type}\" is not supported (TemplateProcessing, RobertaProcessing, ByteLevel, Sequence)");
            }
        }

        private (int BosId, int? EosId) ReadTemplate(JsonElement template, string where)
        {
            var before = new List<int>();
            var after = new List<int>();
            bool textSeen = false;
            foreach (JsonElement item in Items(template, "single", where))
            {
                if (Optional(item, "Sequence") is not null)
                {
                    textSeen = true;
                    continue;
                }
                string name = Optional(item, "SpecialToken") is { } special ? Optional(special, "id")?.GetString() ?? "" : "";
                JsonElement ids = Optional(template, "special_tokens") is { } specials && Optional(specials, name) is { } entry
                    ? Optional(entry, "ids") ?? default
                    : default;
                if (ids.ValueKind != JsonValueKind.Array)
                    throw Problem($"{where}.single has {item}, which special_tokens does not define");
                (textSeen ? after : before).AddRange(ids.EnumerateArray().Select(id => id.GetInt32()));
            }
            if (before.Count > 1)
                throw Problem($"{where}.single puts {before.Count} tokens before the text: only a single BOS is supported");
            return (before.Count == 1 ? before[0] : -1, after.Count > 0 ? after[0] : null);
        }

        private int PairId(JsonElement processor, string name, string where)
        {
            if (Optional(processor, name) is { ValueKind: JsonValueKind.Array } pair && pair.GetArrayLength() == 2 && pair[1].TryGetInt32(out int id))
                return id;
            throw Problem($"{where}.{name} is not a [token, id] pair");
        }

        private static int FindEndOfText(List<AddedToken> addedTokens)
        {
            foreach (string name in EndOfTextNames)
            {
                if (addedTokens.Find(t => t.Content == name) is { } token)
                    return token.Id;
            }
            return -1;
        }

        private string TypeOf(JsonElement element, string where) =>
            element.ValueKind == JsonValueKind.Object && Optional(element, "type")?.GetString() is { } type
                ? type
                : throw Problem($"{where} has no \"type\"");

        private IEnumerable<JsonElement> Items(JsonElement element, string name, string where) =>
            Optional(element, name) is { ValueKind: JsonValueKind.Array } array
                ? array.EnumerateArray()
                : throw Problem($"{where}.{name} is not an array");

        /// <summary>A property's value; null when it is missing or JSON null.</summary>
        private static JsonElement? Optional(JsonElement element, string name) =>
            element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out JsonElement value) && value.ValueKind != JsonValueKind.Null
                ? value
                : null;

        private ModelFormatException Problem(string problem) => new(path, null, problem);
    }
}
