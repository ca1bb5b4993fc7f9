using System.Text;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>
/// The tokenizer a GGUF file carries (<see cref="GgufVocabulary"/>), run by the same machinery as the model's own
/// tokenizer files so that a converted model tokenizes as the original did:
/// <list type="bullet">
/// <item><c>llama</c>: the tokens, scores and kinds become a SentencePiece BPE model handed to
/// <see cref="SentencePieceModelTokenizer"/> (so ids equal the tokenizer.model's, including its known tie-break
/// difference), with byte fallback when all 256 <c>&lt;0xXX&gt;</c> tokens exist, and the dummy-prefix space
/// unless <c>add_space_prefix</c> is false.</item>
/// <item><c>gpt2</c>: the tokens and merges become a byte-level BPE run by <see cref="HuggingFaceBpeTokenizer"/>,
/// split first by the pre-tokenizer <c>tokenizer.ggml.pre</c> names, with that tokenizer.json's own patterns:
/// "gpt-2" (GPT-2's regex), "llama3" / "llama-v3" / "llama-bpe" (Llama 3's regex, ignore_merges), "qwen2"
/// (Qwen2's regex, NFC), "smollm" (each digit alone, then GPT-2's regex). Control tokens are matched in the text
/// and decode to nothing; user-defined tokens are matched and decode to their text.</item>
/// </list>
/// <see cref="Encode"/>'s <c>addBos</c> plays the part of llama.cpp's <c>add_special</c>: when true, BOS comes
/// first if <c>add_bos_token</c> (default: true for llama and the llama3 pre-tokenizer, false otherwise) and EOS
/// last if <c>add_eos_token</c> (default false). <see cref="BosId"/> is -1 when the vocabulary does not add BOS,
/// as for a tokenizer.json whose post-processor adds none.
/// </summary>
public sealed class GgufTokenizer : ITokenizer
{
    /// <summary>GGUF pre-tokenizer names of byte-level vocabularies supported here, and what each one means.</summary>
    private static readonly Dictionary<string, ByteLevelPreTokenizer> PreTokenizers = new(StringComparer.Ordinal)
    {
        ["gpt-2"] = new([HuggingFaceTokenizerJson.Gpt2Pattern]),
        ["llama3"] = ByteLevelPreTokenizer.Llama3,
        ["llama-v3"] = ByteLevelPreTokenizer.Llama3,
        ["llama-bpe"] = ByteLevelPreTokenizer.Llama3,
        ["qwen2"] = new([ByteLevelPreTokenizer.Qwen2Pattern], Nfc: true),
        ["smollm"] = new([@"\p{N}", HuggingFaceTokenizerJson.Gpt2Pattern]),
    };

    private static readonly string SupportedPreTokenizers = string.Join(", ", PreTokenizers.Keys.Select(k => $"\"{k}\""));

    private readonly ITokenizer _tokenizer;
    private readonly bool _addBos;
    private readonly bool _addEos;

    private GgufTokenizer(string source, GgufVocabulary vocabulary, ITokenizer tokenizer, int bosId, bool addBos, int eosId, bool addEos)
    {
        Source = source;
        Vocabulary = vocabulary;
        _tokenizer = tokenizer;
        BosId = addBos ? bosId : -1;
        EosId = eosId;
        _addBos = addBos;
        _addEos = addEos;
    }

    public string Source { get; }
    public GgufVocabulary Vocabulary { get; }
    public int VocabSize => Vocabulary.Tokens.Count;
    public int BosId { get; }
    public int EosId { get; }

    /// <summary>Whether the GGUF file at <paramref name="path"/> carries a vocabulary (not <c>no_vocab</c>).</summary>
    public static bool HasVocabulary(string path)
    {
        using var file = GgufFile.Open(path);
        return file.Metadata.String(GgufVocabulary.ModelKey) is { } model && model is not GgufVocabulary.NoVocabulary and not "none";
    }

    /// <summary>The tokenizer in the metadata of the GGUF file at <paramref name="path"/>; a file without one is a <see cref="ModelFormatException"/>.</summary>
    public static GgufTokenizer Load(string path)
    {
        if (!File.Exists(path))
            throw new ModelFormatException(path, null, "GGUF file not found");
        using var file = GgufFile.Open(path);
        var vocabulary = GgufVocabulary.Read(file.Metadata)
            ?? throw new ModelFormatException(path, null,
                $"the file carries no tokenizer ('{GgufVocabulary.ModelKey}' is absent or \"{GgufVocabulary.NoVocabulary}\"): pass a tokenizer file, or token ids");
        return FromVocabulary(path, vocabulary);
    }

    /// <summary>A tokenizer for <paramref name="vocabulary"/>; <paramref name="source"/> names the file, for messages.</summary>
    public static GgufTokenizer FromVocabulary(string source, GgufVocabulary vocabulary) => vocabulary.Model switch
    {
        "llama" => SentencePieceStyle(source, vocabulary),
        "gpt2" => ByteLevelStyle(source, vocabulary),
        _ => throw new ModelFormatException(source, null,
            $"metadata key '{GgufVocabulary.ModelKey}' is \"{vocabulary.Model}\": supported tokenizers are \"llama\" (SentencePiece BPE) "
            + $"and \"gpt2\" (byte-level BPE), or \"{GgufVocabulary.NoVocabulary}\" for a file without one"),
    };

    public int[] Encode(string text, bool addBos = true)
    {
        int[] body = _tokenizer.Encode(text, addBos: false);
        bool withBos = addBos && _addBos;
        bool withEos = addBos && _addEos && EosId >= 0;
        if (!withBos && !withEos)
            return body;
        var ids = new List<int>(body.Length + 2);
        if (withBos)
            ids.Add(BosId);
        ids.AddRange(body);
        if (withEos)
            ids.Add(EosId);
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids) => _tokenizer.Decode(ids);

    private static GgufTokenizer SentencePieceStyle(string source, GgufVocabulary vocabulary)
    {
        // SentencePiece vocabularies ignore the pre-tokenizer (llama.cpp too); a name other than "default" means
        // the file was meant for a tokenizer this one is not.
        if (vocabulary.PreTokenizer is { } pre && pre != "default")
            throw new ModelFormatException(source, null,
                $"metadata key '{GgufVocabulary.PreTokenizerKey}' is \"{pre}\": a \"llama\" (SentencePiece) vocabulary supports only \"default\" or none");
        var scores = vocabulary.Scores
            ?? throw new ModelFormatException(source, null, $"'{GgufVocabulary.ModelKey}' is \"llama\" but '{GgufVocabulary.ScoresKey}', which decides the merges, is missing");

        // llama.cpp's defaults for SentencePiece vocabularies, when the file does not say.
        int bosId = vocabulary.BosId ?? CheckedDefault(source, vocabulary, GgufVocabulary.BosIdKey, 1);
        int eosId = vocabulary.EosId ?? CheckedDefault(source, vocabulary, GgufVocabulary.EosIdKey, 2);
        int unknownId = vocabulary.UnknownId ?? CheckedDefault(source, vocabulary, GgufVocabulary.UnknownIdKey, 0);
        var pieces = new SentencePiece[vocabulary.Tokens.Count];
        for (int id = 0; id < pieces.Length; id++)
        {
            var type = vocabulary.TypeOf(id);
            pieces[id] = new SentencePiece(vocabulary.Tokens[id], scores[id], type == GgufTokenType.Undefined ? GgufTokenType.Normal : type);
        }
        var proto = new SentencePieceModelProto
        {
            Pieces = pieces,
            ModelType = SentencePieceModelProto.BpeModel,
            ByteFallback = HasAllByteTokens(vocabulary.Tokens),
            UnknownId = unknownId,
            BosId = bosId,
            EosId = eosId,
            PadId = vocabulary.PaddingId ?? -1,
            AddDummyPrefix = vocabulary.AddSpacePrefix ?? true,
            RemoveExtraWhitespaces = vocabulary.RemoveExtraWhitespaces ?? false,
        };
        var tokenizer = SentencePieceModelTokenizer.FromModelProto(source, proto.ToBytes());
        return new GgufTokenizer(source, vocabulary, tokenizer, bosId, vocabulary.AddBos ?? true, eosId, vocabulary.AddEos ?? false);
    }

    private static GgufTokenizer ByteLevelStyle(string source, GgufVocabulary vocabulary)
    {
        string pre = vocabulary.PreTokenizer
            ?? throw new ModelFormatException(source, null,
                $"metadata key '{GgufVocabulary.PreTokenizerKey}' is missing: a \"gpt2\" vocabulary needs the pre-tokenizer it was trained with, one of {SupportedPreTokenizers}");
        if (!PreTokenizers.TryGetValue(pre, out ByteLevelPreTokenizer? preTokenizer))
            throw new ModelFormatException(source, null,
                $"metadata key '{GgufVocabulary.PreTokenizerKey}' is \"{pre}\": supported pre-tokenizers of \"gpt2\" vocabularies are {SupportedPreTokenizers}");
        var mergeList = vocabulary.Merges
            ?? throw new ModelFormatException(source, null, $"'{GgufVocabulary.ModelKey}' is \"gpt2\" but '{GgufVocabulary.MergesKey}' is missing");

        var vocab = new Dictionary<string, int>(vocabulary.Tokens.Count, StringComparer.Ordinal);
        var addedTokens = new List<AddedToken>();
        for (int id = 0; id < vocabulary.Tokens.Count; id++)
        {
            string token = vocabulary.Tokens[id];
            vocab[token] = id;
            var type = vocabulary.TypeOf(id);
            if (type is GgufTokenType.Control or GgufTokenType.Unknown or GgufTokenType.UserDefined)
                addedTokens.Add(new AddedToken(id, token, Special: type != GgufTokenType.UserDefined));
        }
        for (int b = 0; b < 256; b++)
        {
            string symbol = ByteLevelAlphabet.CharFor((byte)b).ToString();
            if (!vocab.ContainsKey(symbol))
                throw new ModelFormatException(source, null,
                    $"'{GgufVocabulary.TokensKey}' lacks \"{symbol}\", the byte-level symbol of byte 0x{b:X2}: not a byte-level BPE vocabulary");
        }

        bool addBos = vocabulary.AddBos ?? preTokenizer.AddsBosByDefault;
        int bosId = vocabulary.BosId ?? -1;
        if (addBos && bosId < 0)
            throw new ModelFormatException(source, null,
                $"the vocabulary adds BOS ('{GgufVocabulary.AddBosKey}' or the \"{pre}\" pre-tokenizer's default) but '{GgufVocabulary.BosIdKey}' is missing");
        var spec = new HuggingFaceTokenizerSpec
        {
            Vocab = vocab,
            Merges = ReadMerges(source, mergeList, vocab),
            AddedTokens = addedTokens,
            Normalizations = preTokenizer.Nfc ? [NormalizationForm.FormC] : [],
            PreTokenizerSteps = [.. preTokenizer.Patterns.Select(p => new IsolatingSplit(InputFileLimits.FilePattern(p), source))],
            IgnoreMerges = preTokenizer.IgnoreMerges,
            // BOS and EOS are added here, by the GGUF flags, not by the byte-level tokenizer.
            BosId = -1,
            EosId = -1,
        };
        var tokenizer = HuggingFaceBpeTokenizer.FromSpec(source, spec);
        return new GgufTokenizer(source, vocabulary, tokenizer, bosId, addBos, vocabulary.EosId ?? -1, vocabulary.AddEos ?? false);
    }

    /// <summary>
    /// Each merge "left right" (split at the first space after the first character, as llama.cpp splits it), checked
    /// against the vocabulary. A pair given twice keeps its first rank, as llama.cpp's rank map does.
    /// </summary>
    private static List<string> ReadMerges(string source, IReadOnlyList<string> merges, Dictionary<string, int> vocab)
    {
        var checkedMerges = new List<string>(merges.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < merges.Count; i++)
        {
            string merge = merges[i];
            int space = merge.Length > 1 ? merge.IndexOf(' ', 1) : -1;
            if (space < 0 || space == merge.Length - 1 || merge.IndexOf(' ', space + 1) >= 0)
                throw new ModelFormatException(source, null, $"'{GgufVocabulary.MergesKey}'[{i}] is \"{merge}\": expected two tokens separated by one space");
            string left = merge[..space], right = merge[(space + 1)..];
            foreach (string part in new[] { left, right, left + right })
            {
                if (!vocab.ContainsKey(part))
                    throw new ModelFormatException(source, null,
                        $"'{GgufVocabulary.MergesKey}'[{i}] (\"{left}\" \"{right}\") uses \"{part}\", which is not in '{GgufVocabulary.TokensKey}'");
            }
            if (seen.Add(merge))
                checkedMerges.Add(merge);
        }
        return checkedMerges;
    }

    private static int CheckedDefault(string source, GgufVocabulary vocabulary, string key, int id) =>
        id < vocabulary.Tokens.Count ? id
            : throw new ModelFormatException(source, null, $"metadata key '{key}' is missing and its default, id {id}, names no token");

    /// <summary>Byte fallback needs a <c>&lt;0xXX&gt;</c> token for every byte.</summary>
    private static bool HasAllByteTokens(IReadOnlyList<string> tokens)
    {
        var set = new HashSet<string>(tokens, StringComparer.Ordinal);
        return Enumerable.Range(0, 256).All(b => set.Contains($"<0x{b:X2}>"));
    }

    /// <summary>How a byte-level vocabulary splits text before merging: patterns applied in turn, each match a piece of its own.</summary>
    private sealed record ByteLevelPreTokenizer(string[] Patterns, bool Nfc = false, bool IgnoreMerges = false, bool AddsBosByDefault = false)
    {
        /// <summary>Llama 3's tokenizer.json Split pattern.</summary>
        public const string Llama3Pattern =
            @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

        /// <summary>Qwen2's tokenizer.json Split pattern: Llama 3's with single digits.</summary>
        public const string Qwen2Pattern =
            @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

        public static readonly ByteLevelPreTokenizer Llama3 = new([Llama3Pattern], IgnoreMerges: true, AddsBosByDefault: true);
    }
}
