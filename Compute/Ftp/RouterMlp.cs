using FtpCluster.Compute.Numerics;

namespace FtpCluster.Compute.Ftp;

/// <summary>
/// The learned router's network: 4 normalized features → 64 ReLU units → one logit. Its parameters are one
/// flat array, so calibration can train them in place:
/// <c>[ W1 (64×4, row-major: unit j's four input weights together) | b1 (64) | w2 (64) | b2 (1) ]</c>.
/// ReLU units can express "recent OR highly attended" as a sum of hinges, which is what beats pure recency.
/// </summary>
public sealed class RouterMlp
{
    public const int Inputs = RouterFeatures.Count;
    public const int Hidden = 64;
    public const int ParameterCount = Hidden * Inputs + Hidden + Hidden + 1;

    private const int FirstBias = Hidden * Inputs, OutputWeights = FirstBias + Hidden, OutputBias = OutputWeights + Hidden;

    /// <param name="parameters">The flat layout above; used, not copied.</param>
    public RouterMlp(float[] parameters)
    {
        if (parameters.Length != ParameterCount)
            throw new ArgumentException($"the router MLP has {ParameterCount} parameters ({Inputs}→{Hidden}→1), got {parameters.Length}");
        Parameters = parameters;
    }

    /// <summary>The weights, in the layout above; calibration updates them in place.</summary>
    public float[] Parameters { get; }

    /// <summary>
    /// A starting point for training: He-initialized first layer (ReLU), small output weights, zero biases,
    /// from a seed.
    /// </summary>
    public static RouterMlp Initial(ulong seed)
    {
        var random = new Xoshiro256StarStar(seed);
        var p = new float[ParameterCount];
        for (int i = 0; i < FirstBias; i++) p[i] = (float)(Gaussian(ref random) * Math.Sqrt(2.0 / Inputs));
        for (int i = OutputWeights; i < OutputBias; i++) p[i] = (float)(Gaussian(ref random) * Math.Sqrt(1.0 / Hidden));
        return new RouterMlp(p);
    }

    /// <summary>The logit for one token's normalized features; sigmoid(logit) is the probability it is computed.</summary>
    public float Forward(ReadOnlySpan<float> x)
    {
        var p = Parameters;
        float output = p[OutputBias];
        for (int j = 0; j < Hidden; j++)
            output += p[OutputWeights + j] * Math.Max(0f, PreActivation(x, j));
        return output;
    }

    /// <summary>
    /// Backward through the network for one token: <paramref name="gradient"/> += <paramref name="outputGradient"/>
    /// · ∂logit/∂parameters, in the layout of <see cref="Parameters"/>. For a guide loss toward another
    /// router's decisions, outputGradient is ∂loss/∂logit (for binary cross-entropy: sigmoid(logit) − target).
    /// </summary>
    public void AccumulateGradient(ReadOnlySpan<float> x, float outputGradient, Span<float> gradient)
    {
        if (gradient.Length != ParameterCount) throw new ArgumentException($"gradient has {gradient.Length} entries for {ParameterCount} parameters");
        var p = Parameters;
        gradient[OutputBias] += outputGradient;
        for (int j = 0; j < Hidden; j++)
        {
            float pre = PreActivation(x, j);
            if (pre <= 0) continue; // an inactive unit passes no gradient and contributes 0 to w2
            gradient[OutputWeights + j] += outputGradient * pre;
            float unit = outputGradient * p[OutputWeights + j];
            gradient[FirstBias + j] += unit;
            for (int i = 0; i < Inputs; i++) gradient[j * Inputs + i] += unit * x[i];
        }
    }

    private float PreActivation(ReadOnlySpan<float> x, int unit)
    {
        var p = Parameters;
        float sum = p[FirstBias + unit];
        for (int i = 0; i < Inputs; i++) sum += p[unit * Inputs + i] * x[i];
        return sum;
    }

    /// <summary>A standard normal draw (Box–Muller); NextUnitInterval is never 0, so the logarithm is finite.</summary>
    private static double Gaussian(ref Xoshiro256StarStar random) =>
        Math.Sqrt(-2 * Math.Log(random.NextUnitInterval())) * Math.Cos(2 * Math.PI * random.NextUnitInterval());
}
