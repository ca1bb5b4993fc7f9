namespace FtpCluster.Compute.Inference;

public sealed record GenerationOptions
{
    /// <summary>New tokens at most (the prompt not counted).</summary>
    public int MaxTokens { get; init; } = 256;
    public SamplingOptions Sampling { get; init; } = new();

    /// <summary>Ids that end generation; the stop token itself is not part of the output.</summary>
    public IReadOnlySet<int> StopTokens { get; init; } = new HashSet<int>();
}

/// <param name="PromptIds">The prompt as fed to the model.</param>
/// <param name="Ids">The prompt followed by the generated tokens.</param>
/// <param name="FinishReason">"stop" (a stop token), "length" (max tokens or the model's context).</param>
public sealed record GenerationResult(int[] PromptIds, int[] Ids, string FinishReason);

/// <summary>Prefill and decode through a whole model held by one stage.</summary>
public static class Generator
{
    public static GenerationResult Generate(TransformerStage model, int[] prompt, GenerationOptions options, Action<int>? onToken = null)
    {
        var c = model.Config;
        if (prompt.Length == 0) throw new ArgumentException("the prompt has no tokens");
        if (prompt.Length > c.MaxSeqLen)
            throw new ArgumentException($"the prompt has {prompt.Length} tokens, more than the model's context of {c.MaxSeqLen}");
        var sampler = new Sampler(options.Sampling);
        var cache = model.NewCache();
        var ids = new List<int>(prompt);
        var logits = new float[c.VocabSize];

        // Prefill: the whole prompt in one batch; only the last row's logits are needed.
        var hidden = new float[prompt.Length * c.Dim];
        var rows = new TokenRow[prompt.Length];
        for (int i = 0; i < rows.Length; i++) rows[i] = new TokenRow(cache, i);
        model.Embed(prompt, hidden);
        model.Forward(rows, hidden);
        model.Logits(hidden.AsSpan((prompt.Length - 1) * c.Dim, c.Dim), 1, logits);

        var step = new float[c.Dim];
        for (int generated = 0; ; generated++)
        {
            if (generated == options.MaxTokens) return new(prompt, ids.ToArray(), "length");
            int next = sampler.Sample(logits, generated);
            if (options.StopTokens.Contains(next)) return new(prompt, ids.ToArray(), "stop");
            ids.Add(next);
            onToken?.Invoke(next);
            if (ids.Count == c.MaxSeqLen) return new(prompt, ids.ToArray(), "length");

            // Decode: one row at the next position.
            model.Embed([next], step);
            model.Forward([new TokenRow(cache, ids.Count - 1)], step);
            model.Logits(step, 1, logits);
        }
    }

    /// <summary>Logits [ids.Length, vocab] at every position of one sequence.</summary>
    public static float[] AllLogits(TransformerStage model, ReadOnlySpan<int> ids)
    {
        var c = model.Config;
        if (ids.Length > c.MaxSeqLen)
            throw new ArgumentException($"{ids.Length} tokens are more than the model's context of {c.MaxSeqLen}");
        var cache = model.NewCache();
        var hidden = new float[ids.Length * c.Dim];
        var rows = new TokenRow[ids.Length];
        for (int i = 0; i < rows.Length; i++) rows[i] = new TokenRow(cache, i);
        model.Embed(ids, hidden);
        model.Forward(rows, hidden);
        var logits = new float[ids.Length * c.VocabSize];
        model.Logits(hidden, ids.Length, logits);
        return logits;
    }
}
