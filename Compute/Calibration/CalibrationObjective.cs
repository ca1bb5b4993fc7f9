using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Calibration;

/// <summary>How a pruned run compares with the dense model over every calibration continuation.</summary>
/// <param name="Kl">Mean KL(dense ‖ pruned) per prediction, in nats: what calibration minimizes.</param>
public sealed record ObjectiveScore(double Kl, double PerplexityRatio, double Top1Agreement);

/// <summary>One calibration sequence in a routed run: its rows [FirstRow, FirstRow + length) of <paramref name="Step"/>.</summary>
/// <param name="Metrics">Its continuation's predictions against the dense model's.</param>
public sealed record ScoredSequence(int Index, RoutedStep Step, int FirstRow, PredictionMetrics Metrics);

/// <summary>
/// What calibration minimizes: the mean KL(dense ‖ pruned) of the next-token distributions over the
/// continuation predictions of the calibration sequences — the split and the figure that eval reports as
/// "kl" (<see cref="Continuation"/>). Pruning applies to the whole sequence, but the continuation is where
/// a pruned model's outputs are used (the newest tokens while generating), so that is where they are
/// compared; a skipped context token's own prediction is not scored. The dense logits of those rows are
/// computed once. Not thread-safe (the model is not).
/// </summary>
public sealed class CalibrationObjective
{
    /// <summary>
    /// Sequences are run together up to this many rows: fewer, larger matrix products. It changes no
    /// result, as the kernels are batch-invariant and each sequence is routed on its own.
    /// </summary>
    private const int RowsPerRun = 4096;

    private readonly TransformerStage _model;
    private readonly IReadOnlyList<int[]> _sequences;
    private readonly float[][] _denseLogits;
    private readonly double _densePerplexity;

    public CalibrationObjective(TransformerStage model, IReadOnlyList<int[]> sequences, RoutingMode routing)
    {
        if (sequences.Count == 0) throw new ArgumentException("calibration needs at least one sequence", nameof(sequences));
        _model = model;
        _sequences = sequences;
        Routing = routing;
        int vocab = model.Config.VocabSize;
        var dense = new PredictionMetrics();
        _denseLogits = new float[sequences.Count][];
        for (int s = 0; s < sequences.Count; s++)
        {
            var ids = sequences[s];
            var (first, count) = Continuation.PredictingRows(ids.Length).GetOffsetAndLength(ids.Length);
            _denseLogits[s] = Generator.AllLogits(model, ids).AsSpan(first * vocab, count * vocab).ToArray();
            dense.AddRows(_denseLogits[s], _denseLogits[s], ids.AsSpan(first), 0..count, vocab);
        }
        _densePerplexity = dense.Perplexity;
        Predictions = dense.Predictions;
    }

    public RoutingMode Routing { get; }
    public IReadOnlyList<int[]> Sequences => _sequences;

    /// <summary>Continuation predictions over all sequences: what <see cref="ObjectiveScore"/> averages over.</summary>
    public long Predictions { get; }

    /// <summary>The pruned model over every calibration sequence.</summary>
    public ObjectiveScore Score(ITokenRouter router, SparsitySchedule schedule)
    {
        double kl = 0, nll = 0;
        long agreements = 0;
        foreach (var scored in Run(router, schedule, [.. Enumerable.Range(0, _sequences.Count)]))
        {
            kl += scored.Metrics.KlDivergence;
            nll += scored.Metrics.NegativeLogLikelihood;
            agreements += scored.Metrics.Agreements;
        }
        return new(kl / Predictions, Math.Exp(nll / Predictions) / _densePerplexity, (double)agreements / Predictions);
    }

    /// <summary>The sequences <paramref name="indices"/> routed in order, each with its own figures.</summary>
    public ScoredSequence[] Run(ITokenRouter router, SparsitySchedule schedule, IReadOnlyList<int> indices)
    {
        var pruner = new TokenPruner(_model, schedule, router);
        var options = new RoutingOptions { Mode = Routing };
        int vocab = _model.Config.VocabSize;
        var scored = new List<ScoredSequence>(indices.Count);
        for (int next = 0; next < indices.Count;)
        {
            var part = new List<int>();
            for (int rows = 0; next < indices.Count && (part.Count == 0 || rows + _sequences[indices[next]].Length <= RowsPerRun); next++)
            {
                part.Add(indices[next]);
                rows += _sequences[indices[next]].Length;
            }
            var step = pruner.Run([.. part.Select(s => _sequences[s])], options);
            int firstRow = 0;
            foreach (int s in part)
            {
                var ids = _sequences[s];
                var (first, count) = Continuation.PredictingRows(ids.Length).GetOffsetAndLength(ids.Length);
                var metrics = new PredictionMetrics();
                metrics.AddRows(_denseLogits[s], step.Logits.AsSpan((firstRow + first) * vocab, count * vocab), ids.AsSpan(first), 0..count, vocab);
                scored.Add(new ScoredSequence(s, step, firstRow, metrics));
                firstRow += ids.Length;
            }
        }
        return [.. scored];
    }
}
