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

/// <summary>
/// Feeds <paramref name="tokens"/> at positions starting at <paramref name="firstPosition"/> and returns
/// the token sampled after the last of them (draw number <paramref name="draw"/> of the sequence).
/// </summary>
public delegate ValueTask<int> GenerationStep(int[] tokens, int firstPosition, int draw);

/// <summary>The generation loop — prefill, then decode until a stop token, max tokens or the context
/// runs out — over any way of running the model: one process, or a pipeline of stages.</summary>
public static class Generator
{
    public static async ValueTask<GenerationResult> GenerateAsync(int[] prompt, int contextLength, GenerationOptions options,
        GenerationStep step, Action<int>? onToken = null)
    {
        if (prompt.Length == 0) throw new ArgumentException("the prompt has no tokens");
        if (prompt.Length > contextLength)
            throw new ArgumentException($"the prompt has {prompt.Length} tokens, more than the model's context of {contextLength}");
        options.Sampling.Validate();
        var ids = new List<int>(prompt);
        if (options.MaxTokens == 0) return new(prompt, [.. ids], "length");

        int next = await step(prompt, 0, 0);
        for (int generated = 0; ; generated++)
        {
            if (options.StopTokens.Contains(next)) return new(prompt, [.. ids], "stop");
            ids.Add(next);
            onToken?.Invoke(next);
            if (generated + 1 == options.MaxTokens || ids.Count == contextLength) return new(prompt, [.. ids], "length");
            next = await step([next], ids.Count - 1, generated + 1);
        }
    }

    /// <summary>Generation through a whole model held by one stage in this process.</summary>
    public static GenerationResult Generate(TransformerStage model, int[] prompt, GenerationOptions options, Action<int>? onToken = null)
    {
        var c = model.Config;
        var sampler = new Sampler(options.Sampling);
        using var cache = model.NewCache();
        var logits = new float[c.VocabSize];
        ValueTask<int> Step(int[] tokens, int firstPosition, int draw)
        {
            var hidden = new float[tokens.Length * c.Dim];
            model.Embed(tokens, hidden);
            // Only the last row's logits are needed to sample what follows.
            model.ForwardToLogits(TokenRow.Consecutive(cache, firstPosition, tokens.Length), hidden, null,
                [tokens.Length - 1], (_, row) => row.CopyTo(logits));
            return ValueTask.FromResult(sampler.Sample(logits, draw));
        }
        var pending = GenerateAsync(prompt, c.MaxSeqLen, options, Step, onToken);
        // Every step above completes synchronously, so the loop has finished by now.
        return pending.IsCompleted ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Logits [ids.Length, vocab] at every position of one sequence.</summary>
    /// <param name="computeRows">Per block, the rows it computes, as <see cref="TransformerStage.Forward"/> takes them (null: every block computes every row).</param>
    public static float[] AllLogits(TransformerStage model, ReadOnlySpan<int> ids, IReadOnlyList<int[]?>? computeRows = null)
    {
        var c = model.Config;
        if (ids.Length > c.MaxSeqLen)
            throw new ArgumentException($"{ids.Length} tokens are more than the model's context of {c.MaxSeqLen}");
        using var cache = model.NewCache();
        var hidden = new float[ids.Length * c.Dim];
        model.Embed(ids, hidden);
        var logits = new float[ids.Length * c.VocabSize];
        model.ForwardToLogits(TokenRow.Consecutive(cache, 0, ids.Length), hidden, computeRows,
            [.. Enumerable.Range(0, ids.Length)], (first, rows) => rows.CopyTo(logits.AsSpan(first * c.VocabSize)));
        return logits;
    }
}
