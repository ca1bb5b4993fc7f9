using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Models;

/// <summary>
/// Writes a model as a GGUF file that llama.cpp and <see cref="GgufCheckpoint"/> read: llama.cpp's tensor
/// names and metadata keys, the given <see cref="GgufVocabulary"/> or none (<c>tokenizer.ggml.model</c>
/// "no_vocab": token ids go in directly),
/// matrices in the model's storage type and 1-D tensors (norms, biases) in F32 as llama.cpp's converter
/// keeps them, holding the values rounded through the storage type, so the file holds the same numbers as
/// a safetensors checkpoint of that type. For <c>llama</c>, q and k rows are permuted into the
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
        string architecture = GgufCheckpoint.ArchitectureName(config);
        if (config.RopeScaling is not null)
            throw new ArgumentException("GGUF stores Llama 3 RoPE scaling as a rope_freqs tensor, which this writer does not write", nameof(config));
        var targetLayout = GgufCheckpoint.RopeLayoutOf(architecture);
        if (config.RopeLayout != targetLayout && config.RopeLayout != RopeLayout.Halves)
            throw new ArgumentException($"q and k rows in {config.RopeLayout} layout cannot be written for GGUF {architecture}, which needs {targetLayout}", nameof(config));
        bool permuteRope = config.RopeLayout != targetLayout;

        var tensors = CheckpointTensors.All(config).Select(t => (t.Role, t.Layer, Spec: SpecOf(config, dtype, t.Role, t.Layer))).ToList();
        using var writer = GgufWriter.Create(path, Metadata(config, dtype, architecture, name, vocabulary), [.. tensors.Select(t => t.Spec)]);
        var buffer = new float[Math.Max(ChunkValues, config.HeadDim * config.Dim)];
        var rounding = new byte[ChunkValues * sizeof(float)];
        foreach (var (role, layer, spec) in tensors)
        {
            var fill = valuesOf(role, layer);
            if (permuteRope && role is TensorRole.Query or TensorRole.Key)
                WriteHalvesAsAdjacentPairs(writer, fill, role == TensorRole.Query ? config.Heads : config.KvHeads, config.HeadDim, config.Dim, buffer);
            else
                WriteInOrder(writer, fill, spec, dtype, buffer, rounding);
        }
        writer.Complete();
    }

    /// <summary>The metadata llama.cpp needs to run the model, under its keys; "no_vocab" without a <paramref name="vocabulary"/>.</summary>
    public static List<KeyValuePair<string, GgufValue>> Metadata(ModelConfig config, TensorDType dtype, string architecture, string name,
        GgufVocabulary? vocabulary = null)
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
            // llama.cpp's file types: ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_BF16 = 32.
            new("general.file_type", new(GgufValueType.UInt32, dtype switch { TensorDType.F32 => 0u, TensorDType.F16 => 1u, _ => 32u })),
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
        entries.AddRange(vocabulary?.ToMetadata() ?? [Text(GgufVocabulary.ModelKey, GgufVocabulary.NoVocabulary)]);
        return entries;
    }

    private static GgufTensorSpec SpecOf(ModelConfig config, TensorDType dtype, TensorRole role, int layer)
    {
        var shape = CheckpointTensors.ExpectedShape(config, role);
        return new GgufTensorSpec(GgufCheckpoint.TensorName(role, layer), shape, shape.Length == 1 ? TensorDType.F32 : dtype);
    }

    private static void WriteInOrder(GgufWriter writer, Action<Span<float>> fill, GgufTensorSpec spec, TensorDType dtype, float[] buffer, byte[] rounding)
    {
        bool roundThroughDType = spec.DType != dtype;
        for (long done = 0; done < spec.ElementCount; done += ChunkValues)
        {
            var chunk = buffer.AsSpan(0, (int)Math.Min(ChunkValues, spec.ElementCount - done));
            fill(chunk);
            if (roundThroughDType)
            {
                var stored = rounding.AsSpan(0, chunk.Length * dtype.Size());
                WeightEncoding.Encode(chunk, dtype, stored);
                WeightConvert.ToSingle(stored, dtype, chunk);
            }
            writer.Write(chunk);
        }
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
