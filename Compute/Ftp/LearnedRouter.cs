namespace FtpCluster.Compute.Ftp;

/// <summary>
/// FTP's dynamic router: one <see cref="RouterMlp"/> shared by all blocks scores each token from its
/// normalized inputs; a block keeps the top (1 − s_b) of a sequence's tokens by that score.
/// <para>
/// The MLP's inputs are the token's features with its position made relative to its sequence's newest token:
/// log((1 + position) / (1 + newest position)), 0 for the newest (<see cref="Inputs"/>). A block keeps a
/// fraction of each sequence, so what decides is how recent a token is for its sequence's length: with the
/// raw position, a cutoff at 60% of the sequence is position 30 in one sequence and 75 in another, and
/// "recent or highly attended" cannot be one rule. On the log scale the first token also stands apart
/// from the second by log 2; with the raw position normalized to unit spread they were 1/36 apart on
/// aidreams260K, and a router trained toward the static one kept skipping the first token.
/// </para>
/// </summary>
public sealed class LearnedRouter(RouterMlp mlp, FeatureNormalization normalization) : ITokenRouter
{
    /// <summary>The MLP's inputs, in order: what the artifact's normalization is of.</summary>
    public static IReadOnlyList<string> InputNames { get; } = ["log_relative_position", "score", "rank", "sparsity"];

    public RouterMlp Mlp { get; } = mlp;

    /// <summary>Of the MLP's inputs (<see cref="Inputs"/>), not of the raw features.</summary>
    public FeatureNormalization Normalization { get; } = normalization;

    public RouterKind Kind => RouterKind.Learned;

    /// <summary>Priority = the MLP's logit.</summary>
    public void Prioritize(ReadOnlySpan<RouterFeatures> tokens, Span<float> priority)
    {
        if (tokens.IsEmpty) return;
        Span<float> x = stackalloc float[RouterFeatures.Count];
        float newest = tokens[^1].Position;
        for (int i = 0; i < tokens.Length; i++) priority[i] = Logit(Input(tokens[i], newest), x);
    }

    /// <summary>The paper's decode rule: computed iff sigmoid(logit) ≥ 0.5, that is logit ≥ 0.</summary>
    public bool KeepsNewest(in RouterFeatures newest, float priority) => priority >= 0;

    /// <summary>
    /// The MLP's inputs for one sequence's new rows (oldest first, as <see cref="Prioritize"/> receives
    /// them): each token's features with the position made relative to the newest, as described above.
    /// </summary>
    public static void Inputs(ReadOnlySpan<RouterFeatures> tokens, Span<RouterFeatures> inputs)
    {
        if (inputs.Length != tokens.Length) throw new ArgumentException($"{inputs.Length} inputs for {tokens.Length} tokens");
        if (tokens.IsEmpty) return;
        float newest = tokens[^1].Position;
        for (int i = 0; i < tokens.Length; i++) inputs[i] = Input(tokens[i], newest);
    }

    /// <summary>The MLP's logit for one token's inputs (<see cref="Inputs"/>); <paramref name="normalized"/> receives them normalized.</summary>
    public float Logit(in RouterFeatures input, Span<float> normalized)
    {
        Normalization.Apply(input, normalized);
        return Mlp.Forward(normalized);
    }

    private static RouterFeatures Input(in RouterFeatures token, float newestPosition) =>
        token with { Position = MathF.Log((1 + token.Position) / (1 + newestPosition)) };
}
