using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// Runs the dense model and each method over every sequence and compares them: perplexity, top-1
/// agreement and KL on the continuation's predictions (<see cref="Continuation"/>) and on the whole
/// sequence, the sparsity each method achieved per block, and its FLOPs against dense.
/// </summary>
public static class Evaluator
{
    /// <summary>
    /// The results, dense first (the reference: its ratios are 1 by definition), then each method in order.
    /// Sequence by sequence, so only one sequence's dense logits are held at a time.
    /// </summary>
    /// <param name="progress">Called with the number of sequences done after each one.</param>
    public static IReadOnlyList<MethodResult> Evaluate(TransformerStage model, IReadOnlyList<EvalSequence> sequences,
        IReadOnlyList<IEvalMethod> methods, Action<int>? progress = null)
    {
        if (sequences.Count == 0) throw new ArgumentException("there is no sequence to evaluate", nameof(sequences));
        var c = model.Config;
        var dense = new DenseMethod(model);
        var totals = new[] { new Totals(dense, c.Layers) }.Concat(methods.Select(m => new Totals(m, c.Layers))).ToArray();
        double denseFlops = 0;
        for (int s = 0; s < sequences.Count; s++)
        {
            var ids = sequences[s].Ids;
            var reference = dense.Run(ids);
            denseFlops += FlopCount.DenseSequence(c, ids.Length);
            foreach (var total in totals)
            {
                var output = total.Method == dense ? reference : total.Method.Run(ids);
                Check(total.Method, output, ids.Length, c.Layers, c.VocabSize);
                total.Add(reference.Logits, output, ids, c);
            }
            progress?.Invoke(s + 1);
        }
        return [.. totals.Select(t => t.Result(totals[0], denseFlops))];
    }

    /// <summary>A method that returns the wrong shape is a bug in the method: say which, before it skews a figure.</summary>
    private static void Check(IEvalMethod method, MethodOutput output, int length, int layers, int vocab)
    {
        if (output.Logits.Length != length * vocab)
            throw new InvalidOperationException($"method {method.Name} returned {output.Logits.Length} logits for {length} tokens of a {vocab}-token vocabulary");
        if (output.ComputedRows.Count != layers)
            throw new InvalidOperationException($"method {method.Name} reported rows for {output.ComputedRows.Count} blocks of {layers}");
        for (int b = 0; b < layers; b++)
        {
            var rows = output.ComputedRows[b];
            for (int i = 0; i < rows.Length; i++)
            {
                if (rows[i] < 0 || rows[i] >= length || (i > 0 && rows[i] <= rows[i - 1]))
                    throw new InvalidOperationException($"method {method.Name}, block {b}: computed rows must be sorted, distinct and in [0, {length})");
            }
        }
    }

    /// <summary>One method's running figures.</summary>
    private sealed class Totals(IEvalMethod method, int layers)
    {
        private readonly PredictionMetrics _continuation = new();
        private readonly PredictionMetrics _full = new();
        private readonly long[] _computed = new long[layers];
        private long _tokens;
        private double _flops;

        public IEvalMethod Method => method;

        public void Add(float[] denseLogits, MethodOutput output, int[] ids, Models.ModelConfig c)
        {
            _continuation.AddRows(denseLogits, output.Logits, ids, Continuation.PredictingRows(ids.Length), c.VocabSize);
            _full.AddRows(denseLogits, output.Logits, ids, 0..(ids.Length - 1), c.VocabSize);
            for (int b = 0; b < layers; b++) _computed[b] += output.ComputedRows[b].Length;
            _tokens += ids.Length;
            _flops += FlopCount.Sequence(c, ids.Length, output.ComputedRows);
        }

        public MethodResult Result(Totals dense, double denseFlops) => new()
        {
            Method = method.Name,
            Routing = method.Routing,
            Stages = method.Stages?.Select(stage => new[] { stage.First, stage.End }).ToArray(),
            SparsityTarget = method.SparsityTarget,
            SparsityAchieved = 1 - (double)_computed.Sum() / (_tokens * layers),
            Perplexity = _continuation.Perplexity,
            PerplexityRatio = _continuation.Perplexity / dense._continuation.Perplexity,
            Top1Agreement = _continuation.Top1Agreement,
            Kl = _continuation.MeanKl,
            FlopsRatio = _flops / denseFlops,
            WireBytesRatio = null,
            BlockSparsity = [.. _computed.Select(computed => 1 - (double)computed / _tokens)],
            FullPerplexity = _full.Perplexity,
            FullPerplexityRatio = _full.Perplexity / dense._full.Perplexity,
            FullTop1Agreement = _full.Top1Agreement,
            FullKl = _full.MeanKl,
        };
    }
}
