namespace FtpCluster.Compute.Ftp;

/// <summary>
/// FTP's dynamic router: one <see cref="RouterMlp"/> shared by all blocks scores each token from its
/// normalized features; a block keeps the top (1 − s_b) of a sequence's tokens by that score.
/// </summary>
public sealed class LearnedRouter(RouterMlp mlp, FeatureNormalization normalization) : ITokenRouter
{
    public RouterMlp Mlp { get; } = mlp;
    public FeatureNormalization Normalization { get; } = normalization;

    public RouterKind Kind => RouterKind.Learned;

    /// <summary>Priority = the MLP's logit.</summary>
    public void Prioritize(ReadOnlySpan<RouterFeatures> tokens, Span<float> priority)
    {
        Span<float> x = stackalloc float[RouterFeatures.Count];
        for (int i = 0; i < tokens.Length; i++) priority[i] = Logit(tokens[i], x);
    }

    /// <summary>The paper's decode rule: computed iff sigmoid(logit) ≥ 0.5, that is logit ≥ 0.</summary>
    public bool KeepsNewest(in RouterFeatures newest, float priority) => priority >= 0;

    /// <summary>The MLP's logit for one token; <paramref name="normalized"/> receives its normalized features.</summary>
    public float Logit(in RouterFeatures features, Span<float> normalized)
    {
        Normalization.Apply(features, normalized);
        return Mlp.Forward(normalized);
    }
}
