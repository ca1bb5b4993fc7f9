namespace FtpCluster.Compute.Models;

/// <summary>
/// A GGUF model file of architecture <c>llama</c> (Llama 1-3, Mistral, TinyLlama, SmolLM2) or <c>qwen2</c>,
/// with llama.cpp's tensor names and metadata keys. Opening reads the config from the metadata and checks
/// every tensor the config needs (present, of a type the kernels read, of the right shape), so a checkpoint
/// that opens is complete; tensor data stays on disk until it is touched.
/// </summary>
/// <remarks>
/// RoPE: llama.cpp's converter permutes the q and k rows of <c>llama</c> models within each head so that
/// Hugging Face's rotate-half pairs (i, i + headDim/2) become adjacent pairs (2i, 2i + 1), the layout of
/// llama.cpp's "normal" RoPE and of llama2.c; this reader keeps the rows as stored and runs RoPE on
/// adjacent pairs. <c>qwen2</c> uses llama.cpp's NeoX RoPE, which rotates halves, and is stored unpermuted.
/// </remarks>
public sealed class GgufCheckpoint : ICheckpoint
{
    /// <summary>A GGUF architecture this engine runs: the Hugging Face one it is, and how its RoPE pairs dimensions.</summary>
    private sealed record Architecture(HuggingFaceArchitecture HuggingFace, RopeLayout RopeLayout);

    private static readonly Dictionary<string, Architecture> Architectures = new()
    {
        ["llama"] = new(HuggingFaceArchitecture.FromModelType("llama")!, RopeLayout.AdjacentPairs),
        ["qwen2"] = new(HuggingFaceArchitecture.FromModelType("qwen2")!, RopeLayout.Halves),
    };

    public const string ArchitectureKey = "general.architecture";
    public const string TokensKey = "tokenizer.ggml.tokens";

    /// <summary>Per-pair RoPE frequency factors, which llama.cpp's converter writes for Llama 3.1 scaling.</summary>
    public const string RopeFrequenciesTensor = "rope_freqs.weight";

    private readonly GgufFile _file;
    private readonly Dictionary<(TensorRole, int), WeightTensor> _tensors = new();

    private GgufCheckpoint(GgufFile file, ModelConfig config)
    {
        _file = file;
        Config = config;
    }

    public string Source => _file.Path;
    public ModelConfig Config { get; }

    /// <summary>The parsed file: metadata (the tokenizer's too) and every tensor, including those this engine does not use.</summary>
    public GgufFile File => _file;

    /// <summary>The GGUF architectures this reader accepts.</summary>
    public static IReadOnlyCollection<string> SupportedArchitectures => Architectures.Keys;

    public static GgufCheckpoint Open(string path)
    {
        var file = GgufFile.Open(path);
        try
        {
            var checkpoint = new GgufCheckpoint(file, ReadConfig(file));
            checkpoint.MapTensors();
            return checkpoint;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The name llama.cpp gives the tensor with this role.</summary>
    public static string TensorName(TensorRole role, int layer = -1)
    {
        string block = $"blk.{layer}.";
        return role switch
        {
            TensorRole.TokenEmbedding => "token_embd.weight",
            TensorRole.FinalNorm => "output_norm.weight",
            TensorRole.LmHead => "output.weight",
            TensorRole.AttentionNorm => block + "attn_norm.weight",
            TensorRole.Query => block + "attn_q.weight",
            TensorRole.Key => block + "attn_k.weight",
            TensorRole.Value => block + "attn_v.weight",
            TensorRole.QueryBias => block + "attn_q.bias",
            TensorRole.KeyBias => block + "attn_k.bias",
            TensorRole.ValueBias => block + "attn_v.bias",
            TensorRole.AttentionOutput => block + "attn_output.weight",
            TensorRole.FfnNorm => block + "ffn_norm.weight",
            TensorRole.Gate => block + "ffn_gate.weight",
            TensorRole.Up => block + "ffn_up.weight",
            TensorRole.Down => block + "ffn_down.weight",
            _ => throw new ArgumentOutOfRangeException(nameof(role)),
        };
    }

    /// <summary>
    /// The GGUF architecture name for a config's architecture (Mistral is written as llama, as llama.cpp does; a llama2.c
    /// checkpoint is a Llama model with its q and k rows already in the adjacent-pair layout).
    /// </summary>
    public static string ArchitectureName(ModelConfig config) => config.Architecture switch
    {
        "LlamaForCausalLM" or "MistralForCausalLM" or "llama2c" => "llama",
        "Qwen2ForCausalLM" => "qwen2",
        _ => throw new ArgumentException($"architecture '{config.Architecture}' has no GGUF counterpart here (supported: llama, mistral, qwen2, llama2c)", nameof(config)),
    };

    /// <summary>How the architecture's RoPE pairs dimensions, which decides whether q and k rows are stored permuted.</summary>
    public static RopeLayout RopeLayoutOf(string architecture) =>
        Architectures.TryGetValue(architecture, out var a) ? a.RopeLayout
            : throw new ArgumentException($"GGUF architecture '{architecture}' is not supported (supported: {string.Join(", ", Architectures.Keys)})", nameof(architecture));

    public WeightTensor? Find(TensorRole role, int layer = -1)
    {
        if (role == TensorRole.LmHead && Config.TiedEmbeddings)
            role = TensorRole.TokenEmbedding;
        return _tensors.GetValueOrDefault((role, CheckpointTensors.IsGlobal(role) ? -1 : layer));
    }

    public void Dispose() => _file.Dispose();

    private static ModelConfig ReadConfig(GgufFile file)
    {
        var m = file.Metadata;
        string path = file.Path;
        string name = m.RequiredString(ArchitectureKey);
        if (!Architectures.TryGetValue(name, out var architecture))
            throw new ModelFormatException(path, null,
                $"architecture '{name}' ({ArchitectureKey}) is not supported (supported: {string.Join(", ", Architectures.Keys)})");
        string Key(string suffix) => $"{name}.{suffix}";

        if (m.Integer(Key("expert_count")) is > 0 and var experts)
            throw new ModelFormatException(path, null, $"{Key("expert_count")} is {experts}: mixture-of-experts models are not supported");

        int dim = m.RequiredInt(Key("embedding_length"));
        int heads = m.RequiredInt(Key("attention.head_count"));
        int? keyLength = m.OptionalInt(Key("attention.key_length"));
        if (keyLength is null && dim % heads != 0)
            throw new ModelFormatException(path, null,
                $"{Key("embedding_length")} {dim} is not a multiple of {Key("attention.head_count")} {heads} and no {Key("attention.key_length")} is given");
        int headDim = keyLength ?? dim / heads;
        RequireEqualIfPresent(m, Key("attention.value_length"), headDim, "the value head size must equal the key head size");
        RequireEqualIfPresent(m, Key("rope.dimension_count"), headDim, "partial rotary embeddings are not supported: RoPE must cover the whole head");

        var embedding = file.FindTensor(TensorName(TensorRole.TokenEmbedding))
            ?? throw new ModelFormatException(path, TensorName(TensorRole.TokenEmbedding), "tensor is missing");
        int vocab = VocabSize(file, embedding);

        var config = new ModelConfig
        {
            Architecture = architecture.HuggingFace.ClassName,
            Dim = dim,
            HiddenDim = m.RequiredInt(Key("feed_forward_length")),
            Layers = m.RequiredInt(Key("block_count")),
            Heads = heads,
            KvHeads = m.OptionalInt(Key("attention.head_count_kv")) ?? heads,
            HeadDim = headDim,
            VocabSize = vocab,
            MaxSeqLen = m.RequiredInt(Key("context_length")),
            RmsNormEps = (float)m.RequiredNumber(Key("attention.layer_norm_rms_epsilon")),
            RopeTheta = (float)(m.Number(Key("rope.freq_base")) ?? 10000.0),
            RopeLayout = architecture.RopeLayout,
            TiedEmbeddings = file.FindTensor(TensorName(TensorRole.LmHead)) is null,
            AttentionBias = architecture.HuggingFace.QkvBias,
        };
        RefuseMetadataRopeScaling(file, name);
        config = config with { RopeFrequencyFactors = RopeFrequencyFactors(file, headDim) };
        config.Validate(path);
        return config;
    }

    private static void RequireEqualIfPresent(GgufMetadata m, string key, int expected, string why)
    {
        if (m.Integer(key) is { } value && value != expected)
            throw new ModelFormatException(m.Path, null, $"metadata key '{key}' is {value}, but the head size is {expected}: {why}");
    }

    /// <summary>
    /// The embedding's row count, which the token list (when the file has one) must match: the forward
    /// pass needs one row per token id.
    /// </summary>
    private static int VocabSize(GgufFile file, GgufTensorInfo embedding)
    {
        if (embedding.Shape.Length != 2 || embedding.Shape[0] > int.MaxValue)
            throw new ModelFormatException(file.Path, embedding.Name, $"shape {embedding.ShapeText} is not a [vocab, dim] matrix");
        int rows = (int)embedding.Shape[0];
        if (file.Metadata.Find(TokensKey) is { Value: Array tokens } && tokens.Length != rows)
            throw new ModelFormatException(file.Path, embedding.Name,
                $"has {rows} rows, but metadata key '{TokensKey}' lists {tokens.Length} tokens: they must match");
        return rows;
    }

    /// <summary>
    /// The only RoPE scaling this engine implements is Llama 3's, which GGUF stores as per-pair frequency factors (the
    /// rope_freqs tensor, <see cref="RopeFrequencyFactors"/>) rather than metadata; linear and YaRN scaling are
    /// metadata. Running a model without the scaling it was trained with would give wrong results past the original
    /// context, so those are refused.
    /// </summary>
    private static void RefuseMetadataRopeScaling(GgufFile file, string architecture)
    {
        var m = file.Metadata;
        string typeKey = $"{architecture}.rope.scaling.type", factorKey = $"{architecture}.rope.scaling.factor";
        string? type = m.String(typeKey);
        double factor = m.Number(factorKey) ?? 1.0;
        if (type != "none" && factor is not (0.0 or 1.0))
            throw new ModelFormatException(file.Path, null,
                $"RoPE scaling '{type ?? "linear"}' with {factorKey} {factor} is not supported (only Llama 3 scaling is, stored as a {RopeFrequenciesTensor} tensor)");
    }

    /// <summary>The rope_freqs tensor's per-pair divisors of the RoPE frequencies (Llama 3.1 and later), or null when the file has none.</summary>
    private static float[]? RopeFrequencyFactors(GgufFile file, int headDim)
    {
        if (file.FindTensor(RopeFrequenciesTensor) is not { } info)
            return null;
        if (info.Shape.Length != 1 || info.Shape[0] != headDim / 2)
            throw new ModelFormatException(file.Path, RopeFrequenciesTensor,
                $"shape {info.ShapeText} is not [{headDim / 2}]: one factor per pair of a head of {headDim} was expected");
        return file.Weight(info).ToFloatArray();
    }

    private void MapTensors()
    {
        foreach (var (role, layer) in CheckpointTensors.All(Config))
        {
            string name = TensorName(role, layer);
            var info = _file.FindTensor(name) ?? throw new ModelFormatException(Source, name, "tensor is missing");
            _tensors[(role, layer)] = _file.Weight(info);
            CheckpointTensors.Require(this, role, layer);
        }
        RefuseUnusedBiases();
    }

    /// <summary>A bias the config has no place for (a llama file with attention or MLP biases) would be silently skipped, so it is refused.</summary>
    private void RefuseUnusedBiases()
    {
        var used = _tensors.Values.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var unused = _file.Tensors.FirstOrDefault(t => t.Name.EndsWith(".bias", StringComparison.Ordinal) && !used.Contains(t.Name));
        if (unused is not null)
            throw new ModelFormatException(Source, unused.Name,
                $"{Config.Architecture} has no such bias in this engine; the model would run without it, wrongly");
    }
}
