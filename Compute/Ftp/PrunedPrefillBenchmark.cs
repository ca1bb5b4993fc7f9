using System.Diagnostics;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Ftp;

public sealed record PrunedPrefillOptions(int PromptTokens = 512, int Reps = 5, int Seed = 1)
{
    public RoutingOptions Routing { get; init; } = new() { Mode = RoutingMode.OnePass };
}

/// <param name="SpeedUp">The median over repetitions of dense seconds over pruned seconds, each pair measured back to back.</param>
/// <param name="FlopsRatio">The pruned prefill's FLOPs over the dense one's (<see cref="FlopCount.Prefill"/>).</param>
/// <param name="SparsityAchieved">The mean over blocks of the fraction of the prompt's tokens each skipped.</param>
public sealed record PrunedPrefillResult(
    int PromptTokens, int Reps,
    double DenseTokensPerSecond, double PrunedTokensPerSecond, double SpeedUp,
    double FlopsRatio, double SparsityAchieved);

/// <summary>
/// Dense against pruned prefill of the same prompt in one process: the dense prefill is
/// <see cref="ModelBenchmark.Prefill"/>; the pruned one is a <see cref="TokenPruner"/> step over the whole
/// prompt, routing included, with the newest row's logits. The two alternate, and each repetition swaps
/// which goes first, so that the machine's drift falls on both alike.
/// </summary>
public static class PrunedPrefillBenchmark
{
    public static PrunedPrefillResult Run(TokenPruner pruner, PrunedPrefillOptions o)
    {
        var model = pruner.Model;
        var c = model.Config;
        if (o.PromptTokens < 1 || o.Reps < 1) throw new ArgumentException("prompt tokens and repetitions must be at least 1");
        if (o.PromptTokens > c.MaxSeqLen) throw new ArgumentException($"{o.PromptTokens} prompt tokens exceed the model's context of {c.MaxSeqLen}");
        var prompt = ModelBenchmark.RandomPrompt(c, o.PromptTokens, o.Seed);
        var hidden = new float[o.PromptTokens * c.Dim];
        var logits = new float[c.VocabSize];
        var denseSeconds = new List<double>();
        var prunedSeconds = new List<double>();
        RoutedStep? step = null;

        double Dense()
        {
            var clock = Stopwatch.StartNew();
            ModelBenchmark.Prefill(model, prompt, hidden, logits).Dispose();
            return clock.Elapsed.TotalSeconds;
        }
        double Pruned()
        {
            var clock = Stopwatch.StartNew();
            step = pruner.Step([pruner.NewSequence()], [prompt], o.Routing, LogitRows.Newest);
            return clock.Elapsed.TotalSeconds;
        }

        for (int rep = -1; rep < o.Reps; rep++) // rep -1 warms up the JIT and the caches
        {
            double dense, pruned;
            if (rep % 2 == 0)
            {
                dense = Dense();
                pruned = Pruned();
            }
            else
            {
                pruned = Pruned();
                dense = Dense();
            }
            if (rep < 0) continue;
            denseSeconds.Add(dense);
            prunedSeconds.Add(pruned);
        }
        return new PrunedPrefillResult(o.PromptTokens, o.Reps,
            o.PromptTokens / ModelBenchmark.Median(denseSeconds), o.PromptTokens / ModelBenchmark.Median(prunedSeconds),
            ModelBenchmark.Median(denseSeconds.Zip(prunedSeconds, (d, p) => d / p)),
            FlopCount.Prefill(c, step!.ComputedRows) / FlopCount.DensePrefill(c, o.PromptTokens), step.MeanSparsity);
    }
}
