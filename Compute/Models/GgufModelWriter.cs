using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Models;

/// <summary>
/// Writes a model as a GGUF file that llama.cpp and <see cref="GgufCheckpoint"/> read: llama.cpp's tensor
/// names and metadata keys, the given <see cref="GgufVocabulary"/> or none (<c>tokenizer.ggml.model</c>
/// "no_vocab": token ids go in directly),
/// matrices in the model's storage type and 1-D tensors (norms, biases) in F32 as llama.cpp's converter
/// keeps them, holding the values rounded through the storage type, so the file holds the same numbers as
/// a safetensors checkpoint of that type; or, through the second overload, each tensor in the type the caller
/// picks (as <see cref="GgufQuantizer"/> does). For <c>llama</c>, q and k rows are permuted into the
/// adjacent-pair RoPE layout (see <see cref="GgufCheckpoint"/>).
/// </summary>
public static class GgufModelWriter
{
    private const int ChunkValues = 1 << 16;

    /// <summary>
    /// Writes the model to <paramref name="path"/>. <paramref name="valuesOf"/>(role, layer) gives a filler
    /// that produces that tensor's values, row-major in the shape <see cref="CheckpointTensors.ExpectedShape"/>
    /// gives and the RoPE layout of <paramref name="config"/>, over consecutive calls. <paramref name="vocabulary"/>,
    /// when given, must have one token per row of the embedding.
    /// </summary>
    public static void Write(string path, ModelConfig config, TensorDType dtype, string name, Func<TensorRole, int, Action<Span<float>>> valuesOf,
        GgufVocabulary? vocabulary = null)
    {
        var metadata = Metadata(config, dtype, GgufCheckpoint.ArchitectureName(config), name, vocabulary);
        Write(path, config, metadata, (_, _, shape) => shape.Length == 1 ? TensorDType.F32 : dtype, (role, layer) =>
        {
            var fill = valuesOf(role, layer);
            return CheckpointTensors.ExpectedShape(config, role).Length == 1 && dtype != TensorDType.F32 ? RoundedThrough(dtype, fill) : fill;
        });
    }

    /// <summary>
    /// Writes the model to <paramref name="path"/> with the given <paramref name="metadata"/>, each tensor stored as
    /// <paramref name="storageOf"/>(role, layer, shape) says (a quantized type only for rows that are whole blocks), its
    /// values from <paramref name="valuesOf"/> as in the other overload, written unchanged but for the storage
    /// type's encoding. <paramref name="written"/> hears of each tensor once it is in the file, with the count so far.
    /// </summary>
    public static void Write(string path, ModelConfig config, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata,
        Func<TensorRole, int, long[], TensorDType> storageOf, Func<TensorRole, int, Action<Span<float>>> valuesOf,
        Action<GgufTensorSpec, int, int>? written = null)
    {
        string architecture = GgufCheckpoint.ArchitectureName(config);
        var targetLayout = GgufCheckpoint.RopeLayoutOf(architecture);
        if (config.RopeLayout != targetLayout && config.RopeLayout != RopeLayout.Halves)
            throw new ArgumentException($"q and k rows in {config.RopeLayout} layout cannot be written for GGUF {architecture}, which needs {targetLayout}", nameof(config));
        bool permuteRope = config.RopeLayout != targetLayout;

        var tensors = CheckpointTensors.All(config).Select(t => (t.Role, t.Layer, Spec: SpecOf(config, storageOf, t.Role, t.Layer))).ToList();
        // Llama 3 scaling goes where llama.cpp's converter puts it: per-pair frequency factors, after the model's tensors.
        float[]? ropeFactors = config.RopeFrequencyFactors ?? config.RopeScaling?.FrequencyFactors(config.RopeTheta, config.HeadDim);
        GgufTensorSpec[] extra = ropeFactors is null ? [] : [new(GgufCheckpoint.RopeFrequenciesTensor, [ropeFactors.Length], TensorDType.F32)];
        using var writer = GgufWriter.Create(path, metadata, [.. tensors.Select(t => t.Spec), .. extra]);
        var buffer = new float[Math.Max(ChunkValues, config.HeadDim * config.Dim)];
        for (int i = 0; i < tensors.Count; i++)
        {
            var (role, layer, spec) = tensors[i];
            var fill = valuesOf(role, layer);
            if (permuteRope && role is TensorRole.Query or TensorRole.Key)
                WriteHalvesAsAdjacentPairs(writer, fill, role == TensorRole.Query ? config.Heads : config.KvHeads, config.HeadDim, config.Dim, buffer);
            else
                WriteInOrder(writer, fill, spec, buffer);
            written?.Invoke(spec, i + 1, tensors.Count);
        }
        if (ropeFactors is not null)
            writer.Write(ropeFactors);
        writer.Complete();
    }

    /// <summary>The metadata llama.cpp needs to run the model, under its keys; "no_vocab" without a <paramref name="vocabulary"/>.</summary>
    /// <param name="fileType"><c>general.file_type</c> when <paramref name="dtype"/> alone does not say it (a mix of types); by default <see cref="FileTypeOf"/>(<paramref name="dtype"/>).</param>
    public static List<KeyValuePair<string, GgufValue>> Metadata(ModelConfig config, TensorDType dtype, string architecture, string name,
        GgufVocabulary? vocabulary = null, uint? fileType = null)
    {
        if (vocabulary is not null && vocabulary.Tokens.Count != config.VocabSize)
            throw new ArgumentException($"the vocabulary has {vocabulary.Tokens.Count} tokens, the model's embedding {config.VocabSize} rows", nameof(vocabulary));
        KeyValuePair<string, GgufValue> Text(string key, string value) => new(key, new(GgufValueType.String, value));
        KeyValuePair<string, GgufValue> UInt(string key, int value) => new($"{architecture}.{key}", new(GgufValueType.UInt32, (uint)value));
        KeyValuePair<string, GgufValue> Float(string key, float value) => new($"{architecture}.{key}", new(GgufValueType.Float32, value));
        List<KeyValuePair<string, GgufValue>> entries =
        [
            Text(GgufCheckpoint.ArchitectureKey, architecture),
            Text("general.name", name),
            new("general.file_type", new(GgufValueType.UInt32, fileType ?? FileTypeOf(dtype))),
            UInt("vocab_size", config.VocabSize),
            UInt("context_length", config.MaxSeqLen),
            UInt("embedding_length", config.Dim),
            UInt("block_count", config.Layers),
            UInt("feed_forward_length", config.HiddenDim),
            UInt("rope.dimension_count", config.HeadDim),
            UInt("attention.head_count", config.Heads),
            UInt("attention.head_count_kv", config.KvHeads),
            UInt("attention.key_length", config.HeadDim),
            UInt("attention.value_length", config.HeadDim),
            Float("rope.freq_base", config.RopeTheta),
            Float("attention.layer_norm_rms_epsilon", config.RmsNormEps),
        ];
        // llama.cpp's quantizer stamps quantized files with the version of its block layouts (GGML_QNT_VERSION, 2 since 2023).
        if (dtype.IsQuantized())
            entries.Add(new("general.quantization_version", new(GgufValueType.UInt32, 2u)));
        entries.AddRange(vocabulary?.ToMetadata() ?? [Text(GgufVocabulary.ModelKey, GgufVocabulary.NoVocabulary)]);
        return entries;
    }

    /// <summary>
    /// <c>general.file_type</c> as llama.cpp numbers its <c>llama_ftype</c>: ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2,
    /// MOSTLY_Q4_1 = 3, MOSTLY_Q8_0 = 7, MOSTLY_Q5_0 = 8, MOSTLY_Q5_1 = 9, MOSTLY_Q4_K_S = 14, MOSTLY_Q5_K_S = 16,
    /// MOSTLY_Q6_K = 18, MOSTLY_BF16 = 32 ("mostly": tensors that cannot take the type keep another). A file of one
    /// k-quant is stamped as the "small" mix of it, the one closest to all-one-type; the number is informational only.
    /// </summary>
    public static uint FileTypeOf(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => 0u,
        TensorDType.F16 => 1u,
        TensorDType.Q4_0 => 2u,
        TensorDType.Q4_1 => 3u,
        TensorDType.Q8_0 => 7u,
        TensorDType.Q5_0 => 8u,
        TensorDType.Q5_1 => 9u,
        TensorDType.Q4_K => 14u,
        TensorDType.Q5_K => 16u,
        TensorDType.Q6_K => 18u,
        TensorDType.BF16 => 32u,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), $"{dtype} has no llama.cpp file type"),
    };

    private static GgufTensorSpec SpecOf(ModelConfig config, Func<TensorRole, int, long[], TensorDType> storageOf, TensorRole role, int layer)
    {
        var shape = CheckpointTensors.ExpectedShape(config, role);
        return new GgufTensorSpec(GgufCheckpoint.TensorName(role, layer), shape, storageOf(role, layer, shape));
    }

    private static void WriteInOrder(GgufWriter writer, Action<Span<float>> fill, GgufTensorSpec spec, float[] buffer)
    {
        for (long done = 0; done < spec.ElementCount; done += ChunkValues)
        {
            var chunk = buffer.AsSpan(0, (int)Math.Min(ChunkValues, spec.ElementCount - done));
            fill(chunk);
            writer.Write(chunk);
        }
    }

    /// <summary>A filler whose values are rounded through <paramref name="dtype"/>, so an F32 tensor holds what a tensor of that type would.</summary>
    private static Action<Span<float>> RoundedThrough(TensorDType dtype, Action<Span<float>> fill)
    {
        byte[] stored = [];
        return chunk =>
        {
            fill(chunk);
            int byteCount = (int)dtype.ByteCount(chunk.Length);
            if (stored.Length < byteCount)
                stored = new byte[byteCount];
            WeightEncoding.Encode(chunk, dtype, stored.AsSpan(0, byteCount));
            WeightConvert.ToSingle(stored.AsSpan(0, byteCount), dtype, chunk);
        };
    }

    /// <summary>
    /// Within each head, row 2i of the adjacent-pair layout is row i of the rotate-half layout and row
    /// 2i + 1 is row headDim/2 + i (llama.cpp's converter permutes the same way).
    /// </summary>
    private static void WriteHalvesAsAdjacentPairs(GgufWriter writer, Action<Span<float>> fill, int heads, int headDim, int cols, float[] buffer)
    {
        var head = buffer.AsSpan(0, headDim * cols);
        for (int h = 0; h < heads; h++)
        {
            fill(head);
            for (int row = 0; row < headDim; row++)
            {
                int sourceRow = row % 2 == 0 ? row / 2 : headDim / 2 + row / 2;
                writer.Write(head.Slice(sourceRow * cols, cols));
            }
        }
    }
}
