namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// Running totals of how a method's next-token predictions compare with the dense model's, over any
/// number of predictions: perplexity of the true next tokens, top-1 agreement with the dense model and
/// mean KL(dense || method). Each row is reduced in float64, so the totals do not drift with their size.
/// </summary>
public sealed class PredictionMetrics
{
    private double[] _dense = [];
    private double[] _method = [];

    public long Predictions { get; private set; }

    /// <summary>Sum over predictions of −log p_method(true next token).</summary>
    public double NegativeLogLikelihood { get; private set; }

    /// <summary>Predictions whose most likely token is the dense model's most likely token.</summary>
    public long Agreements { get; private set; }

    /// <summary>Sum over predictions of KL(dense || method) in nats.</summary>
    public double KlDivergence { get; private set; }

    public double Perplexity => Math.Exp(NegativeLogLikelihood / Predictions);
    public double Top1Agreement => (double)Agreements / Predictions;
    public double MeanKl => KlDivergence / Predictions;

    /// <summary>Adds one prediction: both models' logits for the same position and the token that came next.</summary>
    public void Add(ReadOnlySpan<float> denseLogits, ReadOnlySpan<float> methodLogits, int nextToken)
    {
        if (denseLogits.Length != methodLogits.Length)
            throw new ArgumentException($"dense logits have {denseLogits.Length} entries, the method's {methodLogits.Length}");
        if ((uint)nextToken >= (uint)denseLogits.Length)
            throw new ArgumentOutOfRangeException(nameof(nextToken), nextToken, $"outside the vocabulary [0, {denseLogits.Length})");
        if (_dense.Length < denseLogits.Length)
        {
            _dense = new double[denseLogits.Length];
            _method = new double[denseLogits.Length];
        }
        var logP = _dense.AsSpan(0, denseLogits.Length);
        var logQ = _method.AsSpan(0, methodLogits.Length);
        Inference.Sampler.LogSoftmax(denseLogits, logP);
        Inference.Sampler.LogSoftmax(methodLogits, logQ);

        double kl = 0;
        for (int v = 0; v < logP.Length; v++)
            kl += Math.Exp(logP[v]) * (logP[v] - logQ[v]);
        Predictions++;
        NegativeLogLikelihood -= logQ[nextToken];
        // Rounding can leave a hair below zero when the two rows are nearly equal; KL itself never is.
        KlDivergence += Math.Max(kl, 0);
        if (ArgMax(denseLogits) == ArgMax(methodLogits)) Agreements++;
    }

    /// <summary>Adds every prediction of a sequence over the given rows (row r predicts <paramref name="ids"/>[r + 1]).</summary>
    public void AddRows(ReadOnlySpan<float> denseLogits, ReadOnlySpan<float> methodLogits, ReadOnlySpan<int> ids, Range rows, int vocab)
    {
        var (first, count) = rows.GetOffsetAndLength(ids.Length);
        for (int r = first; r < first + count; r++)
            Add(denseLogits.Slice(r * vocab, vocab), methodLogits.Slice(r * vocab, vocab), ids[r + 1]);
    }

    /// <summary>The first index of the largest logit, as greedy decoding picks it.</summary>
    private static int ArgMax(ReadOnlySpan<float> logits) => Inference.Sampler.ArgMax(logits);
}
