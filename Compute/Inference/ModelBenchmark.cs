using System.Diagnostics;

namespace FtpCluster.Compute.Inference;

public sealed record ModelBenchmarkOptions(int PromptTokens = 128, int GenTokens = 64, int Reps = 5, int Seed = 1);

/// <summary>Medians over the repetitions; prefill covers embedding, every block and the last row's logits.</summary>
public sealed record ModelBenchmarkResult(
    int PromptTokens, int GenTokens, int Reps,
    double PrefillTokensPerSecond, double DecodeTokensPerSecond,
    double PrefillSecondsMedian, double DecodeSecondsMedian);

/// <summary>Prefill and decode speed of a whole model in one process, as llama.cpp's bench measures them.</summary>
public static class ModelBenchmark
{
    public static ModelBenchmarkResult Run(TransformerStage model, ModelBenchmarkOptions o)
    {
        var c = model.Config;
        if (o.PromptTokens < 1 || o.GenTokens < 1 || o.Reps < 1)
            throw new ArgumentException("prompt tokens, generated tokens and repetitions must be at least 1");
        if (o.PromptTokens + o.GenTokens > c.MaxSeqLen)
            throw new ArgumentException($"{o.PromptTokens} prompt + {o.GenTokens} generated tokens exceed the model's context of {c.MaxSeqLen}");
        var random = new Random(o.Seed);
        var prompt = Enumerable.Range(0, o.PromptTokens).Select(_ => random.Next(c.VocabSize)).ToArray();
        var hidden = new float[o.PromptTokens * c.Dim];
        var step = new float[c.Dim];
        var logits = new float[c.VocabSize];
        var prefillSeconds = new List<double>();
        var decodeSeconds = new List<double>();

        for (int rep = -1; rep < o.Reps; rep++) // rep -1 warms up the JIT and the caches
        {
            var cache = model.NewCache();
            var rows = TokenRow.Consecutive(cache, 0, o.PromptTokens);
            var clock = Stopwatch.StartNew();
            model.Embed(prompt, hidden);
            model.Forward(rows, hidden);
            model.Logits(hidden.AsSpan((o.PromptTokens - 1) * c.Dim, c.Dim), 1, logits);
            double prefill = clock.Elapsed.TotalSeconds;

            clock.Restart();
            for (int i = 0; i < o.GenTokens; i++)
            {
                int next = Sampler.ArgMax(logits);
                model.Embed([next], step);
                model.Forward([new TokenRow(cache, o.PromptTokens + i)], step);
                model.Logits(step, 1, logits);
            }
            double decode = clock.Elapsed.TotalSeconds;
            if (rep < 0) continue;
            prefillSeconds.Add(prefill);
            decodeSeconds.Add(decode);
        }
        double prefillMedian = Median(prefillSeconds), decodeMedian = Median(decodeSeconds);
        return new ModelBenchmarkResult(o.PromptTokens, o.GenTokens, o.Reps,
            o.PromptTokens / prefillMedian, o.GenTokens / decodeMedian, prefillMedian, decodeMedian);
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }
}
