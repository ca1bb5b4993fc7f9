namespace FtpCluster.Compute.Models;

/// <summary>
/// The shape, numerics and storage of a random-weight model for <see cref="ModelSynthesizer"/>. The
/// defaults are the <c>tiny</c> preset; start from <see cref="Preset"/> and change fields with <c>with</c>.
/// </summary>
public sealed record SyntheticModelOptions
{
    /// <summary>A Hugging Face <c>model_type</c>: "llama", "mistral" or "qwen2" (q/k/v biases).</summary>
    public string Architecture { get; init; } = "llama";
    public int Layers { get; init; } = 2;
    public int Dim { get; init; } = 64;
    public int Heads { get; init; } = 4;
    public int KvHeads { get; init; } = 2;
    public int HiddenDim { get; init; } = 96;
    public int VocabSize { get; init; } = 128;

    /// <summary>Null means Dim / Heads.</summary>
    public int? HeadDim { get; init; }

    public bool TiedEmbeddings { get; init; }
    public float RopeTheta { get; init; } = 10000f;
    public float RmsNormEps { get; init; } = 1e-5f;
    public Llama3RopeScaling? RopeScaling { get; init; }
    public int MaxPositions { get; init; } = 2048;
    public TensorDType DType { get; init; } = TensorDType.F32;
    public ulong Seed { get; init; } = 1;

    /// <summary>Null writes one model.safetensors; otherwise shards of at most this many data bytes (a larger tensor gets a shard of its own) and an index.</summary>
    public long? MaxShardBytes { get; init; }

    private static readonly Dictionary<string, SyntheticModelOptions> Presets = new()
    {
        ["tiny"] = new SyntheticModelOptions(),
        ["smollm2-135m"] = new SyntheticModelOptions
        {
            Layers = 30, Dim = 576, Heads = 9, KvHeads = 3, HiddenDim = 1536, VocabSize = 49152,
            TiedEmbeddings = true, RopeTheta = 100000f, MaxPositions = 8192,
        },
        ["tinyllama-1.1b"] = new SyntheticModelOptions
        {
            Layers = 22, Dim = 2048, Heads = 32, KvHeads = 4, HiddenDim = 5632, VocabSize = 32000,
            TiedEmbeddings = false, MaxPositions = 2048,
        },
    };

    public static IReadOnlyList<string> PresetNames { get; } = [.. Presets.Keys];

    /// <summary>The named preset; an unknown name is an <see cref="ArgumentException"/> listing the known ones.</summary>
    public static SyntheticModelOptions Preset(string name) =>
        Presets.GetValueOrDefault(name)
        ?? throw new ArgumentException($"unknown preset '{name}' (known: {string.Join(", ", PresetNames)})", nameof(name));

    /// <summary>The config these options describe; options that cannot make a working model are an <see cref="ArgumentException"/>.</summary>
    public ModelConfig ToConfig()
    {
        var architecture = HuggingFaceArchitecture.FromModelType(Architecture)
            ?? throw new ArgumentException(
                $"unknown architecture '{Architecture}' (known: {string.Join(", ", HuggingFaceArchitecture.Supported.Select(a => a.ModelType))})");
        if (HeadDim is null && Heads > 0 && Dim % Heads != 0)
            throw new ArgumentException($"dim {Dim} is not a multiple of heads {Heads}: give the head dim explicitly");
        if (DType.IsQuantized())
            throw new ArgumentException($"synthetic models are written as f32, f16 or bf16, not {DType}; load one with --dtype {DType.ToString().ToLowerInvariant()} to quantize it at load");
        if (MaxShardBytes is <= 0)
            throw new ArgumentException($"max shard size must be positive, got {MaxShardBytes}");
        var config = new ModelConfig
        {
            Architecture = architecture.ClassName,
            Dim = Dim,
            HiddenDim = HiddenDim,
            Layers = Layers,
            Heads = Heads,
            KvHeads = KvHeads,
            HeadDim = HeadDim ?? (Heads > 0 ? Dim / Heads : 0),
            VocabSize = VocabSize,
            MaxSeqLen = MaxPositions,
            RmsNormEps = RmsNormEps,
            RopeTheta = RopeTheta,
            RopeScaling = RopeScaling,
            RopeLayout = RopeLayout.Halves,
            TiedEmbeddings = TiedEmbeddings,
            AttentionBias = architecture.QkvBias,
        };
        try
        {
            config.Validate("synthetic model options");
        }
        catch (ModelFormatException e)
        {
            throw new ArgumentException(e.Message, e);
        }
        return config;
    }
}
