using System.Text.Json;

namespace FtpCluster.Compute.Models;

/// <summary>A Hugging Face architecture this engine runs, under its class name and its <c>model_type</c>.</summary>
/// <param name="QkvBias">Whether q, k and v projections always carry a bias (Qwen2).</param>
public sealed record HuggingFaceArchitecture(string ClassName, string ModelType, bool QkvBias)
{
    public static readonly IReadOnlyList<HuggingFaceArchitecture> Supported =
    [
        new("LlamaForCausalLM", "llama", QkvBias: false),
        new("MistralForCausalLM", "mistral", QkvBias: false),
        new("Qwen2ForCausalLM", "qwen2", QkvBias: true),
    ];

    public static HuggingFaceArchitecture? FromClassName(string name) =>
        Supported.FirstOrDefault(a => a.ClassName == name);

    public static HuggingFaceArchitecture? FromModelType(string name) =>
        Supported.FirstOrDefault(a => a.ModelType == name);
}

/// <summary>Reads and writes the <c>config.json</c> of a Hugging Face checkpoint.</summary>
public static class HuggingFaceConfig
{
    /// <summary>The config of a checkpoint; anything this engine cannot run is a <see cref="ModelFormatException"/>.</summary>
    public static ModelConfig Read(string path)
    {
        if (!File.Exists(path))
            throw new ModelFormatException(path, null, "file not found: a Hugging Face checkpoint directory needs config.json");
        using var document = ModelJson.ReadFile(path, InputFileLimits.ConfigJsonBytes, "config.json");
        var root = document.RootElement.AsObject(path, "config.json");

        var architectures = root.Required(path, "architectures").AsArray(path, "architectures");
        if (architectures.GetArrayLength() != 1)
            throw new ModelFormatException(path, null, $"'architectures' must name exactly one architecture, got {architectures.GetRawText()}");
        string className = architectures[0].AsString(path, "architectures");
        var architecture = HuggingFaceArchitecture.FromClassName(className)
            ?? throw new ModelFormatException(path, null,
                $"architecture '{className}' is not supported (supported: {string.Join(", ", HuggingFaceArchitecture.Supported.Select(a => a.ClassName))})");

        int RequiredInt(string key) => root.Required(path, key).AsInt(path, key);

        // Every supported architecture is a SiLU-gated MLP; another activation would run, wrongly.
        string activation = root.Optional("hidden_act")?.AsString(path, "hidden_act") ?? "silu";
        if (activation != "silu")
            throw new ModelFormatException(path, null, $"hidden_act '{activation}' is not supported (only silu)");

        int dim = RequiredInt("hidden_size");
        int heads = RequiredInt("num_attention_heads");
        int? explicitHeadDim = root.Optional("head_dim")?.AsInt(path, "head_dim");
        if (explicitHeadDim is null && heads > 0 && dim % heads != 0)
            throw new ModelFormatException(path, null, $"hidden_size {dim} is not a multiple of num_attention_heads {heads} and no head_dim is given");

        var config = new ModelConfig
        {
            Architecture = architecture.ClassName,
            Dim = dim,
            HiddenDim = RequiredInt("intermediate_size"),
            Layers = RequiredInt("num_hidden_layers"),
            Heads = heads,
            KvHeads = root.Optional("num_key_value_heads")?.AsInt(path, "num_key_value_heads") ?? heads,
            HeadDim = explicitHeadDim ?? (heads > 0 ? dim / heads : 0),
            VocabSize = RequiredInt("vocab_size"),
            MaxSeqLen = MaxSequenceLength(path, root, architecture),
            RmsNormEps = (float)root.Required(path, "rms_norm_eps").AsNumber(path, "rms_norm_eps"),
            RopeTheta = ReadRopeTheta(path, root),
            RopeScaling = ReadRopeScaling(path, root),
            RopeLayout = RopeLayout.Halves,
            TiedEmbeddings = root.Optional("tie_word_embeddings")?.AsBool(path, "tie_word_embeddings") ?? false,
            AttentionBias = architecture.QkvBias,
        };
        if (architecture.ModelType == "llama")
            RefuseLlamaBiases(path, root);
        config.Validate(path);
        return config;
    }

    /// <summary>
    /// Writes a config.json that <see cref="Read"/> and Hugging Face transformers both read back as
    /// <paramref name="config"/>; <paramref name="dtype"/> becomes <c>torch_dtype</c>.
    /// </summary>
    public static void Write(string path, ModelConfig config, TensorDType dtype)
    {
        var architecture = HuggingFaceArchitecture.FromClassName(config.Architecture)
            ?? throw new ArgumentException($"'{config.Architecture}' is not a supported Hugging Face architecture", nameof(config));
        if (config.AttentionBias != architecture.QkvBias)
            throw new ArgumentException($"{architecture.ClassName} {(architecture.QkvBias ? "always has" : "cannot have")} q/k/v biases", nameof(config));
        if (config.RopeFrequencyFactors is not null)
            throw new ArgumentException("config.json states Llama 3 RoPE scaling by its parameters, and this model has only per-pair frequency factors (from a GGUF rope_freqs tensor)", nameof(config));

        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteStartArray("architectures");
        json.WriteStringValue(architecture.ClassName);
        json.WriteEndArray();
        json.WriteString("model_type", architecture.ModelType);
        json.WriteString("hidden_act", "silu");
        json.WriteNumber("hidden_size", config.Dim);
        json.WriteNumber("intermediate_size", config.HiddenDim);
        json.WriteNumber("num_hidden_layers", config.Layers);
        json.WriteNumber("num_attention_heads", config.Heads);
        json.WriteNumber("num_key_value_heads", config.KvHeads);
        json.WriteNumber("head_dim", config.HeadDim);
        json.WriteNumber("vocab_size", config.VocabSize);
        json.WriteNumber("max_position_embeddings", config.MaxSeqLen);
        json.WriteNumber("rms_norm_eps", config.RmsNormEps);
        json.WriteNumber("rope_theta", config.RopeTheta);
        if (config.RopeScaling is { } s)
        {
            json.WriteStartObject("rope_scaling");
            json.WriteString("rope_type", "llama3");
            json.WriteNumber("factor", s.Factor);
            json.WriteNumber("low_freq_factor", s.LowFreqFactor);
            json.WriteNumber("high_freq_factor", s.HighFreqFactor);
            json.WriteNumber("original_max_position_embeddings", s.OriginalMaxPositions);
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("rope_scaling");
        }
        json.WriteBoolean("tie_word_embeddings", config.TiedEmbeddings);
        if (architecture.ModelType == "llama")
        {
            json.WriteBoolean("attention_bias", false);
            json.WriteBoolean("mlp_bias", false);
        }
        json.WriteString("torch_dtype", dtype switch
        {
            TensorDType.F32 => "float32",
            TensorDType.F16 => "float16",
            _ => "bfloat16",
        });
        json.WriteEndObject();
    }

    /// <summary>
    /// max_position_embeddings, capped by an active sliding window: up to the window, sliding-window
    /// attention equals the full attention this engine computes; beyond it they differ.
    /// </summary>
    private static int MaxSequenceLength(string path, JsonElement root, HuggingFaceArchitecture architecture)
    {
        int max = root.Required(path, "max_position_embeddings").AsInt(path, "max_position_embeddings");
        bool windowActive = architecture.ModelType switch
        {
            "mistral" => true,
            "qwen2" => root.Optional("use_sliding_window")?.AsBool(path, "use_sliding_window") ?? false,
            _ => false,
        };
        int? window = windowActive ? root.Optional("sliding_window")?.AsInt(path, "sliding_window") : null;
        return window is > 0 ? Math.Min(max, window.Value) : max;
    }

    /// <summary>
    /// transformers 5 moved rope_theta and rope_scaling into one "rope_parameters" object; earlier
    /// versions keep them at the top level. Either way an absent theta means 10000.
    /// </summary>
    private static float ReadRopeTheta(string path, JsonElement root)
    {
        var theta = root.Optional("rope_theta")
            ?? root.Optional("rope_parameters")?.AsObject(path, "rope_parameters").Optional("rope_theta");
        return (float)(theta?.AsNumber(path, "rope_theta") ?? 10000.0);
    }

    private static Llama3RopeScaling? ReadRopeScaling(string path, JsonElement root)
    {
        string key = root.Optional("rope_scaling") is not null ? "rope_scaling" : "rope_parameters";
        if (root.Optional(key) is not { } scaling)
            return null;
        scaling.AsObject(path, key);
        // transformers renamed "type" to "rope_type"; older configs still use "type".
        var typeValue = scaling.Optional("rope_type") ?? scaling.Optional("type")
            ?? throw new ModelFormatException(path, null, $"{key} has neither 'rope_type' nor 'type'");
        string type = typeValue.AsString(path, $"{key}.rope_type");
        if (type == "default")
            return null;
        if (type != "llama3")
            throw new ModelFormatException(path, null, $"{key} type '{type}' is not supported (supported: llama3, default)");

        JsonElement Field(string name) => scaling.Optional(name)
            ?? throw new ModelFormatException(path, null, $"missing required key '{key}.{name}'");
        var result = new Llama3RopeScaling(
            (float)Field("factor").AsNumber(path, $"{key}.factor"),
            (float)Field("low_freq_factor").AsNumber(path, $"{key}.low_freq_factor"),
            (float)Field("high_freq_factor").AsNumber(path, $"{key}.high_freq_factor"),
            Field("original_max_position_embeddings").AsInt(path, $"{key}.original_max_position_embeddings"));
        if (result.Factor <= 0 || result.LowFreqFactor <= 0 || result.HighFreqFactor <= result.LowFreqFactor || result.OriginalMaxPositions <= 0)
            throw new ModelFormatException(path, null,
                $"{key} is inconsistent: factor {result.Factor}, low_freq_factor {result.LowFreqFactor}, high_freq_factor {result.HighFreqFactor} (must exceed low_freq_factor), original_max_position_embeddings {result.OriginalMaxPositions}");
        return result;
    }

    /// <summary>
    /// Llama's attention_bias puts a bias on o_proj as well as on q, k and v, and mlp_bias on every MLP
    /// projection. Neither has a place in this engine, so such a model would run without them, wrongly.
    /// </summary>
    private static void RefuseLlamaBiases(string path, JsonElement root)
    {
        foreach (string key in new[] { "attention_bias", "mlp_bias" })
        {
            if (root.Optional(key)?.AsBool(path, key) == true)
                throw new ModelFormatException(path, null, $"{key} true is not supported for LlamaForCausalLM (its o_proj/MLP biases have no place in this engine)");
        }
    }
}
