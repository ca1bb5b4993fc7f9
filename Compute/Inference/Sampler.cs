using System.Numerics.Tensors;

namespace FtpCluster.Compute.Inference;

/// <summary>How the next token is drawn from the logits. Temperature 0 means greedy (argmax).</summary>
public sealed record SamplingOptions
{
    public float Temperature { get; init; }

    /// <summary>Keep only the K most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches P; 1 keeps all.</summary>
    public float TopP { get; init; } = 1f;

    public int Seed { get; init; }

    public void Validate()
    {
        if (!(Temperature >= 0)) throw new ArgumentException($"temperature must be >= 0, got {Temperature}");
        if (TopK < 0) throw new ArgumentException($"top-k must be >= 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}");
    }
}

/// <summary>
/// Draws token ids from logits. The random number for draw n depends only on (seed, n), not on the draws
/// before it: a sequence replayed after a failure, or continued on another stage, samples the same tokens.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private float[] _probabilities = [];
    private int[] _order = [];

    public Sampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
    }

    /// <param name="draw">Which draw of the sequence this is (0 for its first generated token).</param>
    public int Sample(ReadOnlySpan<float> logits, int draw)
    {
        if (_options.Temperature == 0) return ArgMax(logits);

        if (_probabilities.Length < logits.Length)
        {
            _probabilities = new float[logits.Length];
            _order = new int[logits.Length];
        }
        var p = _probabilities.AsSpan(0, logits.Length);
        TensorPrimitives.Divide(logits, _options.Temperature, p);
        TensorPrimitives.SoftMax(p, p);

        // Candidates in descending probability; top-k and top-p each cut a prefix of that order.
        var order = _order.AsSpan(0, logits.Length);
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var probabilities = _probabilities;
        order.Sort((a, b) => probabilities[b].CompareTo(probabilities[a]) is var c && c != 0 ? c : a.CompareTo(b));
        int keep = _options.TopK > 0 ? Math.Min(_options.TopK, order.Length) : order.Length;
        float cumulative = 0;
        for (int i = 0; i < keep; i++)
        {
            cumulative += p[order[i]];
            if (cumulative >= _options.TopP)
            {
                keep = i + 1;
                break;
            }
        }

        float total = 0;
        for (int i = 0; i < keep; i++) total += p[order[i]];
        var random = new Numerics.Xoshiro256StarStar(unchecked((ulong)_options.Seed * 0x9E3779B97F4A7C15UL ^ (ulong)draw));
        float r = (float)random.NextUnitInterval() * total;
        for (int i = 0; i < keep; i++)
        {
            r -= p[order[i]];
            if (r <= 0) return order[i];
        }
        return order[keep - 1];
    }

    /// <summary>log p(v) = logit[v] − log Σ exp(logit), summed in float64 so the small probabilities keep their digits.</summary>
    public static void LogSoftmax(ReadOnlySpan<float> logits, Span<double> result)
    {
        if (result.Length != logits.Length) throw new ArgumentException($"{result.Length} results for {logits.Length} logits");
        double max = double.NegativeInfinity;
        foreach (float l in logits) max = Math.Max(max, l);
        double sum = 0;
        for (int v = 0; v < logits.Length; v++) sum += Math.Exp(logits[v] - max);
        double logSum = max + Math.Log(sum);
        for (int v = 0; v < logits.Length; v++) result[v] = logits[v] - logSum;
    }

    /// <summary>The first index of the largest logit.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
}
