namespace FtpCluster.Compute.Ftp;

/// <summary>
/// The four small numbers a router sees for a token (FTP paper), not its hidden state: where it is, how
/// much attention it got where it was last computed, how that compares with the rest of its sequence,
/// and how sparse the block being routed is.
/// </summary>
/// <param name="Position">The token's original position in its sequence (0 for the first token).</param>
/// <param name="Score">Its latest attention score: see <see cref="Inference.TransformerStage.ForwardRouted"/>;
/// <see cref="InitialScore"/> before any block has computed it.</param>
/// <param name="Rank">The relative rank of that score among all its sequence's tokens (see <see cref="RoutingBatch"/>), in (0, 1).</param>
/// <param name="Sparsity">s_b of the block routed (or the mean of a stage segment).</param>
public readonly record struct RouterFeatures(float Position, float Score, float Rank, float Sparsity)
{
    public const int Count = 4;

    /// <summary>
    /// The latest score of a token no block has computed yet. Scores are attention probabilities in
    /// [0, 1], so 0 reads as "none received yet"; every such token ties, so ranks carry no information
    /// until block 0 has run.
    /// </summary>
    public const float InitialScore = 0f;

    public void CopyTo(Span<float> destination)
    {
        destination[0] = Position;
        destination[1] = Score;
        destination[2] = Rank;
        destination[3] = Sparsity;
    }
}

/// <summary>
/// Per feature, the mean and standard deviation a learned router subtracts and divides by, so that
/// log relative positions down to −5 and scores near 0.01 reach the MLP on the same scale. Fitted on
/// calibration data and stored in the router artifact.
/// </summary>
public sealed class FeatureNormalization
{
    private readonly float[] _mean;
    private readonly float[] _std;

    /// <exception cref="ArgumentException">Not four of each, a value not finite, or a std not positive.</exception>
    public FeatureNormalization(IReadOnlyList<float> mean, IReadOnlyList<float> std)
    {
        if (mean.Count != RouterFeatures.Count || std.Count != RouterFeatures.Count)
            throw new ArgumentException($"a feature normalization needs {RouterFeatures.Count} means and stds ({string.Join(", ", LearnedRouter.InputNames)}), got {mean.Count} and {std.Count}");
        for (int i = 0; i < RouterFeatures.Count; i++)
        {
            if (!float.IsFinite(mean[i])) throw new ArgumentException($"{LearnedRouter.InputNames[i]}: mean {mean[i]} is not finite");
            if (!(std[i] > 0 && float.IsFinite(std[i]))) throw new ArgumentException($"{LearnedRouter.InputNames[i]}: std {std[i]} must be positive and finite");
        }
        _mean = [.. mean];
        _std = [.. std];
    }

    /// <summary>Leaves features as they are.</summary>
    public static FeatureNormalization Identity { get; } = new([0, 0, 0, 0], [1, 1, 1, 1]);

    public IReadOnlyList<float> Mean => _mean;
    public IReadOnlyList<float> Std => _std;

    /// <summary>
    /// Mean and (population) standard deviation of each feature over <paramref name="samples"/>. A feature
    /// that does not vary (s_b under a uniform schedule) gets std 1, so it normalizes to 0 instead of NaN.
    /// </summary>
    public static FeatureNormalization Fit(ReadOnlySpan<RouterFeatures> samples)
    {
        if (samples.IsEmpty) throw new ArgumentException("fitting a feature normalization needs at least one sample");
        var sum = new double[RouterFeatures.Count];
        var sumSquares = new double[RouterFeatures.Count];
        Span<float> x = stackalloc float[RouterFeatures.Count];
        foreach (var f in samples)
        {
            f.CopyTo(x);
            for (int i = 0; i < x.Length; i++)
            {
                sum[i] += x[i];
                sumSquares[i] += (double)x[i] * x[i];
            }
        }
        var mean = new float[RouterFeatures.Count];
        var std = new float[RouterFeatures.Count];
        for (int i = 0; i < mean.Length; i++)
        {
            double m = sum[i] / samples.Length;
            double s = Math.Sqrt(Math.Max(0, sumSquares[i] / samples.Length - m * m));
            mean[i] = (float)m;
            std[i] = s > 1e-6 * Math.Max(1, Math.Abs(m)) ? (float)s : 1f;
        }
        return new FeatureNormalization(mean, std);
    }

    /// <summary>normalized[i] = (feature i − mean i) / std i.</summary>
    public void Apply(in RouterFeatures features, Span<float> normalized)
    {
        features.CopyTo(normalized);
        for (int i = 0; i < RouterFeatures.Count; i++)
            normalized[i] = (normalized[i] - _mean[i]) / _std[i];
    }
}
