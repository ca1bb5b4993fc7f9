using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Tokenizers;

/// <summary>
/// The tokenizer a GGUF file carries in its metadata, under llama.cpp's keys: <c>tokenizer.ggml.model</c>
/// ("llama": SentencePiece-style BPE by scores; "gpt2": byte-level BPE by merge rank), the tokens by id, their
/// scores and kinds, the merges, the special token ids and flags, and <c>tokenizer.chat_template</c>. Reading checks
/// types and lengths (every per-token array has one entry per token, every id names a token, tokens are unique);
/// what the values mean is <see cref="GgufTokenizer"/>'s business.
/// </summary>
public sealed record GgufVocabulary
{
    public const string ModelKey = "tokenizer.ggml.model";
    public const string PreTokenizerKey = "tokenizer.ggml.pre";
    public const string TokensKey = "tokenizer.ggml.tokens";
    public const string ScoresKey = "tokenizer.ggml.scores";
    public const string TokenTypesKey = "tokenizer.ggml.token_type";
    public const string MergesKey = "tokenizer.ggml.merges";
    public const string BosIdKey = "tokenizer.ggml.bos_token_id";
    public const string EosIdKey = "tokenizer.ggml.eos_token_id";
    public const string UnknownIdKey = "tokenizer.ggml.unknown_token_id";
    public const string PaddingIdKey = "tokenizer.ggml.padding_token_id";
    public const string AddBosKey = "tokenizer.ggml.add_bos_token";
    public const string AddEosKey = "tokenizer.ggml.add_eos_token";
    public const string AddSpacePrefixKey = "tokenizer.ggml.add_space_prefix";
    public const string RemoveExtraWhitespacesKey = "tokenizer.ggml.remove_extra_whitespaces";
    public const string ChatTemplateKey = "tokenizer.chat_template";

    /// <summary>The <c>tokenizer.ggml.model</c> value of files without a vocabulary, whose token ids go in directly.</summary>
    public const string NoVocabulary = "no_vocab";

    /// <summary><c>tokenizer.ggml.model</c>: "llama" or "gpt2" (others are refused when a tokenizer is built).</summary>
    public required string Model { get; init; }

    /// <summary><c>tokenizer.ggml.pre</c>: the pre-tokenizer's name ("llama3", "qwen2", "smollm", "gpt-2", "default").</summary>
    public string? PreTokenizer { get; init; }

    /// <summary>The token of each id, as the vocabulary spells it ('▁' for a space in "llama", the byte alphabet in "gpt2").</summary>
    public required IReadOnlyList<string> Tokens { get; init; }

    public IReadOnlyList<float>? Scores { get; init; }
    public IReadOnlyList<GgufTokenType>? TokenTypes { get; init; }

    /// <summary>Byte-level BPE merges in rank order, each "left right".</summary>
    public IReadOnlyList<string>? Merges { get; init; }

    public int? BosId { get; init; }
    public int? EosId { get; init; }
    public int? UnknownId { get; init; }
    public int? PaddingId { get; init; }
    public bool? AddBos { get; init; }
    public bool? AddEos { get; init; }
    public bool? AddSpacePrefix { get; init; }
    public bool? RemoveExtraWhitespaces { get; init; }
    public string? ChatTemplate { get; init; }

    /// <summary>The kind of token <paramref name="id"/>; <see cref="GgufTokenType.Normal"/> when the file gives no kinds.</summary>
    public GgufTokenType TypeOf(int id) => TokenTypes is { } types ? types[id] : GgufTokenType.Normal;

    /// <summary>
    /// The vocabulary in <paramref name="metadata"/>; null when the file has none (<c>tokenizer.ggml.model</c> absent,
    /// <c>"no_vocab"</c> or <c>"none"</c>, as in synthetic files). A mistyped key, a per-token array of the wrong
    /// length, an id that names no token or a token listed twice is a <see cref="ModelFormatException"/>.
    /// </summary>
    public static GgufVocabulary? Read(GgufMetadata metadata)
    {
        string? model = metadata.String(ModelKey);
        if (model is null or NoVocabulary or "none")
            return null;
        string[] tokens = metadata.Array<string>(TokensKey)
            ?? throw new ModelFormatException(metadata.Path, null, $"'{ModelKey}' is \"{model}\" but '{TokensKey}' is missing");
        if (tokens.Length == 0)
            throw new ModelFormatException(metadata.Path, null, $"'{TokensKey}' is empty");
        CheckUnique(metadata.Path, tokens);

        float[]? scores = metadata.Array<float>(ScoresKey);
        CheckLength(metadata.Path, ScoresKey, scores?.Length, tokens.Length);
        int[]? types = metadata.Array<int>(TokenTypesKey);
        CheckLength(metadata.Path, TokenTypesKey, types?.Length, tokens.Length);
        if (types is not null && Array.FindIndex(types, t => t is < (int)GgufTokenType.Undefined or > (int)GgufTokenType.Byte) is var bad and >= 0)
            throw new ModelFormatException(metadata.Path, null, $"'{TokenTypesKey}'[{bad}] is {types[bad]}: token types are 0..6");

        int? Id(string key) => metadata.Integer(key) is not { } id ? null
            : id >= 0 && id < tokens.Length ? (int)id
            : throw new ModelFormatException(metadata.Path, null, $"metadata key '{key}' is {id}, which names no token (the vocabulary has {tokens.Length})");
        return new GgufVocabulary
        {
            Model = model,
            PreTokenizer = metadata.String(PreTokenizerKey),
            Tokens = tokens,
            Scores = scores,
            TokenTypes = types?.Select(t => (GgufTokenType)t).ToArray(),
            Merges = metadata.Array<string>(MergesKey),
            BosId = Id(BosIdKey),
            EosId = Id(EosIdKey),
            UnknownId = Id(UnknownIdKey),
            PaddingId = Id(PaddingIdKey),
            AddBos = metadata.Bool(AddBosKey),
            AddEos = metadata.Bool(AddEosKey),
            AddSpacePrefix = metadata.Bool(AddSpacePrefixKey),
            RemoveExtraWhitespaces = metadata.Bool(RemoveExtraWhitespacesKey),
            ChatTemplate = metadata.String(ChatTemplateKey),
        };
    }

    /// <summary>
    /// The vocabulary of a SentencePiece BPE <c>tokenizer.model</c> (Llama 1/2, Mistral, TinyLlama) as llama.cpp's
    /// converter writes it: model "llama", pre "default", the pieces with their scores and kinds, the model's own
    /// special ids, add_space_prefix and remove_extra_whitespaces from its normalizer, BOS added and EOS not.
    /// </summary>
    public static GgufVocabulary FromSentencePieceModel(string tokenizerModelPath)
    {
        if (!File.Exists(tokenizerModelPath))
            throw new ModelFormatException(tokenizerModelPath, null, "tokenizer file not found");
        var proto = SentencePieceModelProto.Parse(tokenizerModelPath, InputFileLimits.ReadAllBytes(tokenizerModelPath, InputFileLimits.TokenizerModelBytes, "tokenizer.model"));
        if (proto.ModelType != SentencePieceModelProto.BpeModel)
            throw new ModelFormatException(tokenizerModelPath, null,
                $"trainer_spec.model_type is {proto.ModelType}: only BPE SentencePiece models ({SentencePieceModelProto.BpeModel}) are GGUF \"llama\" vocabularies");
        int? IdOrNull(int id) => id >= 0 && id < proto.Pieces.Count ? id : null;
        return new GgufVocabulary
        {
            Model = "llama",
            PreTokenizer = "default",
            Tokens = proto.Pieces.Select(p => p.Piece).ToArray(),
            Scores = proto.Pieces.Select(p => p.Score).ToArray(),
            TokenTypes = proto.Pieces.Select(p => p.Type).ToArray(),
            BosId = IdOrNull(proto.BosId),
            EosId = IdOrNull(proto.EosId),
            UnknownId = IdOrNull(proto.UnknownId),
            PaddingId = IdOrNull(proto.PadId),
            AddBos = true,
            AddEos = false,
            AddSpacePrefix = proto.AddDummyPrefix,
            RemoveExtraWhitespaces = proto.RemoveExtraWhitespaces,
        };
    }

    /// <summary>The metadata entries for a GGUF file, under llama.cpp's keys; absent values are left out.</summary>
    public List<KeyValuePair<string, GgufValue>> ToMetadata()
    {
        var entries = new List<KeyValuePair<string, GgufValue>>();
        void Add(string key, GgufValueType type, object? value)
        {
            if (value is not null)
                entries.Add(new(key, new GgufValue(type, value)));
        }
        void AddArray(string key, GgufValueType elementType, Array? values)
        {
            if (values is not null)
                entries.Add(new(key, new GgufValue(GgufValueType.Array, values, elementType)));
        }

        Add(ModelKey, GgufValueType.String, Model);
        Add(PreTokenizerKey, GgufValueType.String, PreTokenizer);
        AddArray(TokensKey, GgufValueType.String, Tokens.ToArray());
        AddArray(ScoresKey, GgufValueType.Float32, Scores?.ToArray());
        AddArray(TokenTypesKey, GgufValueType.Int32, TokenTypes?.Select(t => (int)t).ToArray());
        AddArray(MergesKey, GgufValueType.String, Merges?.ToArray());
        Add(BosIdKey, GgufValueType.UInt32, (uint?)BosId);
        Add(EosIdKey, GgufValueType.UInt32, (uint?)EosId);
        Add(UnknownIdKey, GgufValueType.UInt32, (uint?)UnknownId);
        Add(PaddingIdKey, GgufValueType.UInt32, (uint?)PaddingId);
        Add(AddBosKey, GgufValueType.Bool, AddBos);
        Add(AddEosKey, GgufValueType.Bool, AddEos);
        Add(AddSpacePrefixKey, GgufValueType.Bool, AddSpacePrefix);
        Add(RemoveExtraWhitespacesKey, GgufValueType.Bool, RemoveExtraWhitespaces);
        Add(ChatTemplateKey, GgufValueType.String, ChatTemplate);
        return entries;
    }

    private static void CheckLength(string path, string key, int? length, int tokenCount)
    {
        if (length is { } n && n != tokenCount)
            throw new ModelFormatException(path, null, $"'{key}' has {n} entries for the {tokenCount} tokens of '{TokensKey}'");
    }

    /// <summary>llama.cpp refuses a vocabulary with a token listed twice (its text-to-id map would lose one).</summary>
    private static void CheckUnique(string path, string[] tokens)
    {
        var firstIdOf = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++)
        {
            if (!firstIdOf.TryAdd(tokens[id], id))
                throw new ModelFormatException(path, null, $"'{TokensKey}' lists \"{tokens[id]}\" twice, at ids {firstIdOf[tokens[id]]} and {id}");
        }
    }
}
