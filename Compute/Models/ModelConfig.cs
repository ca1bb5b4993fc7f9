using FtpCluster.Compute.Devices;

namespace FtpCluster.Compute.Models;

/// <summary>How rotary embeddings pair up the dimensions of a head.</summary>
public enum RopeLayout
{
    /// <summary>llama2.c and GGUF llama models: dimensions (2i, 2i+1) rotate together.</summary>
    AdjacentPairs,

    /// <summary>Hugging Face "rotate_half": dimensions (i, i + headDim/2) rotate together.</summary>
    Halves,
}

/// <summary>Llama-3 style frequency scaling (<c>rope_scaling.rope_type == "llama3"</c>).</summary>
public sealed record Llama3RopeScaling(float Factor, float LowFreqFactor, float HighFreqFactor, int OriginalMaxPositions)
{
    /// <summary>Llama 3.1: long wavelengths are divided by the factor, short ones kept, the band between blended.</summary>
    public double Scale(double frequency)
    {
        double lowFreqWavelen = OriginalMaxPositions / LowFreqFactor;
        double highFreqWavelen = OriginalMaxPositions / HighFreqFactor;
        double wavelen = 2 * Math.PI / frequency;
        if (wavelen < highFreqWavelen) return frequency;
        if (wavelen > lowFreqWavelen) return frequency / Factor;
        double smooth = (OriginalMaxPositions / wavelen - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
        return (1 - smooth) * frequency / Factor + smooth * frequency;
    }

    /// <summary>
    /// The same scaling as per-pair divisors of the frequencies (θ_i becomes θ_i / factor_i), as llama.cpp's converter
    /// stores it in a GGUF file's rope_freqs tensor.
    /// </summary>
    public float[] FrequencyFactors(float ropeTheta, int headDim)
    {
        var factors = new float[headDim / 2];
        for (int i = 0; i < factors.Length; i++)
        {
            double frequency = RopeTable.BaseFrequency(ropeTheta, i, headDim);
            factors[i] = (float)(frequency / Scale(frequency));
        }
        return factors;
    }
}

/// <summary>The shape and numerics of a decoder-only Llama-family model, whatever file it came from.</summary>
public sealed record ModelConfig
{
    /// <summary>"llama2c" for llama2.c checkpoints, otherwise the Hugging Face architecture name (a GGUF file's as well).</summary>
    public required string Architecture { get; init; }
    public required int Dim { get; init; }
    public required int HiddenDim { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    public required int MaxSeqLen { get; init; }
    public float RmsNormEps { get; init; } = 1e-5f;
    public float RopeTheta { get; init; } = 10000f;
    public Llama3RopeScaling? RopeScaling { get; init; }

    /// <summary>
    /// Per pair i of a head, the divisor of its RoPE frequency (θ_i / factor_i), as GGUF files store Llama 3 scaling
    /// (the rope_freqs tensor); null: none, or the scaling is given as <see cref="RopeScaling"/> (Hugging Face config).
    /// </summary>
    public float[]? RopeFrequencyFactors { get; init; }
    public RopeLayout RopeLayout { get; init; } = RopeLayout.AdjacentPairs;
    public bool TiedEmbeddings { get; init; }

    /// <summary>Qwen2: q, k and v projections carry a bias.</summary>
    public bool AttentionBias { get; init; }

    public int QueryDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;

    /// <summary>Parameters of one transformer block (norms, attention, MLP, biases).</summary>
    public long ParametersPerLayer =>
        2L * Dim
        + (long)Dim * QueryDim + 2L * Dim * KvDim + (long)QueryDim * Dim
        + 3L * Dim * HiddenDim
        + (AttentionBias ? QueryDim + 2L * KvDim : 0);

    public long ParameterCount =>
        (long)VocabSize * Dim * (TiedEmbeddings ? 1 : 2) + Dim + Layers * ParametersPerLayer;

    /// <summary>The largest model width accepted (real models stop at 16384).</summary>
    public const int MaxDim = 1 << 16;

    /// <summary>The largest MLP width accepted (real models stop near 53248).</summary>
    public const int MaxHiddenDim = 1 << 18;

    /// <summary>The most transformer blocks accepted (real models stop near 128).</summary>
    public const int MaxLayers = 1024;

    /// <summary>The most attention heads accepted (real models stop at 128).</summary>
    public const int MaxHeads = 1024;

    /// <summary>The widest attention head accepted (real models stop at 256).</summary>
    public const int MaxHeadDim = 1024;

    /// <summary>The largest vocabulary accepted (real ones stop near 262144).</summary>
    public const int MaxVocabSize = 1 << 22;

    /// <summary>The longest context accepted (real ones stop near 10 million tokens).</summary>
    public const int MaxContextLength = 1 << 24;

    /// <summary>
    /// Throws <see cref="ModelFormatException"/> when the numbers cannot describe a working model, or describe one
    /// far larger than any real model (the Max* constants, each well above the largest published model): such a
    /// config comes from a damaged or crafted file, and believing it would size allocations no machine has.
    /// </summary>
    public void Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new ModelFormatException(source, null, what);
        }
        void Bounded(int value, int max, string field) =>
            Require(value <= max, $"{field} {value} is beyond the {max} this engine accepts: the file is damaged or not a model it can run");
        Require(Dim > 0 && HiddenDim > 0 && Layers > 0 && Heads > 0 && KvHeads > 0 && HeadDim > 0 && VocabSize > 0,
            $"dimensions must be positive (dim {Dim}, hidden {HiddenDim}, layers {Layers}, heads {Heads}, kv heads {KvHeads}, head dim {HeadDim}, vocab {VocabSize})");
        Require(MaxSeqLen > 0, $"max sequence length must be positive, got {MaxSeqLen}");
        Bounded(Dim, MaxDim, "dim");
        Bounded(HiddenDim, MaxHiddenDim, "hidden dim");
        Bounded(Layers, MaxLayers, "layer count");
        Bounded(Heads, MaxHeads, "head count");
        Bounded(KvHeads, MaxHeads, "kv head count");
        Bounded(HeadDim, MaxHeadDim, "head dim");
        Bounded(VocabSize, MaxVocabSize, "vocabulary size");
        Bounded(MaxSeqLen, MaxContextLength, "max sequence length");
        Require(Heads % KvHeads == 0, $"heads ({Heads}) must be a multiple of kv heads ({KvHeads})");
        Require(HeadDim % 2 == 0, $"head dim ({HeadDim}) must be even for rotary embeddings");
        Require(float.IsFinite(RmsNormEps) && RmsNormEps > 0, $"RMSNorm epsilon must be a positive finite number, got {RmsNormEps}");
        Require(float.IsFinite(RopeTheta) && RopeTheta > 0, $"RoPE theta must be a positive finite number, got {RopeTheta}");
        if (RopeFrequencyFactors is { } factors)
        {
            Require(RopeScaling is null, "RoPE scaling is given twice: as Llama 3 parameters and as per-pair frequency factors");
            Require(factors.Length == HeadDim / 2, $"there are {factors.Length} RoPE frequency factors, but a head of {HeadDim} has {HeadDim / 2} pairs");
            int bad = Array.FindIndex(factors, f => !float.IsFinite(f) || f <= 0);
            Require(bad < 0, $"RoPE frequency factor {bad} is {(bad < 0 ? 0 : factors[bad])}: factors must be positive finite numbers");
        }
    }
}
