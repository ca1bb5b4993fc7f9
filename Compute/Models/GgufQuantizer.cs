using FtpCluster.Compute.Chat;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Models;

/// <summary>What <see cref="GgufQuantizer.Quantize"/> wrote: the tensors per storage type, and why no vocabulary went in when none did.</summary>
public sealed record GgufQuantizeResult(ModelConfig Config, IReadOnlyDictionary<TensorDType, int> TensorsByType, string? NoVocabularyReason);

/// <summary>
/// Writes any checkpoint <see cref="Checkpoint.Open"/> reads as a GGUF file of quantized weights, as llama.cpp's
/// quantizer lays one out: the same architecture (llama or qwen2) and hyper-parameters, every matrix (q, k, v, o,
/// gate, up, down, the token embedding and a separate output head) quantized as the <see cref="GgufQuantization"/>
/// says, norms and biases in F32, <c>general.file_type</c> llama.cpp's number for it, and the source's vocabulary when
/// GGUF can carry it. Tensors are read from the memory-mapped source and written chunk by chunk, so the model is never
/// whole in memory.
/// </summary>
/// <remarks>
/// A matrix whose rows are not a whole number of the type's blocks cannot be quantized to it. llama.cpp's quantizer
/// falls back for such rows only from the k-quants (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and to F16 when even that
/// does not divide the rows; <see cref="TensorDTypeExtensions.StorageForRows"/>), so SmolLM2's width of 576 takes Q5_0
/// in a Q4_K file; for a 32-element target it stops ("no tensor type fallback is defined for type q8_0", tested against
/// the llama.cpp peer). This writer makes the same choice for the k-quants and keeps the other types' odd matrices in
/// F16, what llama.cpp's chain ends in, so every model can be written and the file still loads in llama.cpp. The
/// quantizers are the reference ones of <see cref="SmallBlocks"/> and <see cref="SuperBlocks"/> (the k-quants fitted by
/// least squares), not llama.cpp's search for the best scales.
/// </remarks>
public static class GgufQuantizer
{
    /// <summary>
    /// Writes <paramref name="source"/> to <paramref name="outputPath"/> with its matrices quantized as <paramref name="quantization"/> says.
    /// <paramref name="progress"/> hears of each tensor once written (the tensor, how many so far, how many in all).
    /// A config GGUF cannot hold (Llama 3 RoPE scaling, an architecture other than llama, mistral or qwen2) is an
    /// <see cref="ArgumentException"/>, raised before the output file is created.
    /// </summary>
    public static GgufQuantizeResult Quantize(ICheckpoint source, string outputPath, GgufQuantization quantization, Action<GgufTensorSpec, int, int>? progress = null)
    {
        var config = source.Config;
        string architecture = GgufCheckpoint.ArchitectureName(config);
        var (vocabulary, noVocabularyReason) = VocabularyOf(source);
        var metadata = GgufModelWriter.Metadata(config, quantization.Type, architecture, NameOf(source), vocabulary, quantization.FileType);

        var counts = new Dictionary<TensorDType, int>();
        GgufModelWriter.Write(outputPath, config, metadata, (role, layer, shape) => quantization.StorageOf(config, role, layer, shape),
            (role, layer) => ValuesOf(CheckpointTensors.Require(source, role, layer)),
            (spec, done, total) =>
            {
                counts[spec.DType] = counts.GetValueOrDefault(spec.DType) + 1;
                progress?.Invoke(spec, done, total);
            });
        return new GgufQuantizeResult(config, counts, noVocabularyReason);
    }

    /// <summary>
    /// The vocabulary GGUF can carry for <paramref name="source"/>, or null and why not: a GGUF source's own; a
    /// Hugging Face folder's SentencePiece <c>tokenizer.model</c> with the chat template of its tokenizer_config.json;
    /// nothing for llama2.c files and byte-level <c>tokenizer.json</c> vocabularies, which are not converted.
    /// </summary>
    public static (GgufVocabulary? Vocabulary, string? NoVocabularyReason) VocabularyOf(ICheckpoint source)
    {
        GgufVocabulary? vocabulary;
        switch (source)
        {
            case GgufCheckpoint gguf:
                vocabulary = GgufVocabulary.Read(gguf.File.Metadata);
                if (vocabulary is null)
                    return (null, $"{source.Source} has no vocabulary ({GgufVocabulary.ModelKey} is absent or \"{GgufVocabulary.NoVocabulary}\")");
                break;
            case HuggingFaceCheckpoint:
                string tokenizerModel = Path.Combine(source.Source, "tokenizer.model");
                if (!File.Exists(tokenizerModel))
                {
                    return (null, File.Exists(Path.Combine(source.Source, "tokenizer.json"))
                        ? $"{source.Source} has a tokenizer.json but no tokenizer.model: only SentencePiece tokenizer.model vocabularies are converted to GGUF"
                        : $"{source.Source} has no tokenizer.model");
                }
                string tokenizerConfig = Path.Combine(source.Source, "tokenizer_config.json");
                vocabulary = GgufVocabulary.FromSentencePieceModel(tokenizerModel) with
                {
                    ChatTemplate = File.Exists(tokenizerConfig) ? ChatTemplate.FromTokenizerConfig(tokenizerConfig)?.Source : null,
                };
                break;
            default:
                return (null, $"{source.Source} is a llama2.c checkpoint, whose tokenizer is not converted to GGUF");
        }
        return vocabulary.Tokens.Count == source.Config.VocabSize
            ? (vocabulary, null)
            : (null, $"{source.Source}: the vocabulary has {vocabulary.Tokens.Count} tokens but the embedding {source.Config.VocabSize} rows");
    }

    /// <summary>The source GGUF's <c>general.name</c>, else the file or folder name.</summary>
    private static string NameOf(ICheckpoint source) =>
        (source as GgufCheckpoint)?.File.Metadata.String("general.name")
        ?? Path.GetFileNameWithoutExtension(Path.TrimEndingDirectorySeparator(source.Source));

    /// <summary>A filler that reads the tensor's values in order, dequantized or widened to float32.</summary>
    private static Action<Span<float>> ValuesOf(WeightTensor tensor)
    {
        long position = 0;
        return chunk =>
        {
            tensor.CopyTo(chunk, position);
            position += chunk.Length;
        };
    }
}
