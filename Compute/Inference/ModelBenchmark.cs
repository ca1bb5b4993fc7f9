using System.Diagnostics;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Inference;

/// <param name="Sequences">Above 1, decode is also timed for this many sequences at once, each prefilled with the prompt.</param>
public sealed record ModelBenchmarkOptions(int PromptTokens = 128, int GenTokens = 64, int Reps = 5, int Seed = 1, int Sequences = 1);

/// <summary>
/// Medians over the repetitions; prefill covers embedding, every block and the last row's logits. Decoding
/// <see cref="Sequences"/> at once (null for one) counts the tokens of all of them.
/// </summary>
public sealed record ModelBenchmarkResult(
    int PromptTokens, int GenTokens, int Reps,
    double PrefillTokensPerSecond, double DecodeTokensPerSecond,
    double PrefillSecondsMedian, double DecodeSecondsMedian,
    int Sequences = 1, double? DecodeTogetherTokensPerSecond = null);

/// <summary>Prefill and decode speed of a whole model in one process, as llama.cpp's bench measures them.</summary>
public static class ModelBenchmark
{
    public static ModelBenchmarkResult Run(TransformerStage model, ModelBenchmarkOptions o)
    {
        var c = model.Config;
        if (o.PromptTokens < 1 || o.GenTokens < 1 || o.Reps < 1 || o.Sequences < 1)
            throw new ArgumentException("prompt tokens, generated tokens, repetitions and sequences must be at least 1");
        if (o.PromptTokens + o.GenTokens > c.MaxSeqLen)
            throw new ArgumentException($"{o.PromptTokens} prompt + {o.GenTokens} generated tokens exceed the model's context of {c.MaxSeqLen}");
        var prompt = RandomPrompt(c, o.PromptTokens, o.Seed);
        var hidden = new float[o.PromptTokens * c.Dim];
        var logits = new float[c.VocabSize];
        var prefillSeconds = new List<double>();
        var decodeSeconds = new List<double>();
        var togetherSeconds = new List<double>();

        for (int rep = -1; rep < o.Reps; rep++) // rep -1 warms up the JIT and the caches
        {
            var clock = Stopwatch.StartNew();
            using var cache = Prefill(model, prompt, hidden, logits, o.PromptTokens + o.GenTokens);
            double prefill = clock.Elapsed.TotalSeconds;

            clock.Restart();
            Decode(model, cache, o.PromptTokens, o.GenTokens, logits);
            double decode = clock.Elapsed.TotalSeconds;
            double? together = o.Sequences > 1 ? DecodeTogether(model, prompt, o.Sequences, o.GenTokens, Seconds) : null;
            if (rep < 0) continue;
            prefillSeconds.Add(prefill);
            decodeSeconds.Add(decode);
            if (together is { } seconds) togetherSeconds.Add(seconds);
        }
        double prefillMedian = Median(prefillSeconds), decodeMedian = Median(decodeSeconds);
        return new ModelBenchmarkResult(o.PromptTokens, o.GenTokens, o.Reps,
            o.PromptTokens / prefillMedian, o.GenTokens / decodeMedian, prefillMedian, decodeMedian,
            o.Sequences, togetherSeconds.Count > 0 ? (double)o.Sequences * o.GenTokens / Median(togetherSeconds) : null);
    }

    /// <summary>
    /// Batch decode: <paramref name="sequences"/> sequences prefilled with the prompt in one microbatch (unmeasured), then
    /// <paramref name="tokens"/> greedy steps of one row per sequence, together, which <paramref name="measure"/> runs
    /// between the start and the end of its measurement.
    /// </summary>
    private static T DecodeTogether<T>(TransformerStage model, int[] prompt, int sequences, int tokens, Func<Action, T> measure)
    {
        var c = model.Config;
        // Each sequence's length is known, as the coordinator tells a deployment's stages (IStageGrain.Reserve).
        var caches = Enumerable.Range(0, sequences).Select(_ => model.NewCache(prompt.Length + tokens)).ToArray();
        try
        {
            var next = new int[sequences];
            void TakeGreedy(int first, ReadOnlySpan<float> logits)
            {
                for (int j = 0; j < logits.Length / c.VocabSize; j++)
                    next[first + j] = Sampler.ArgMax(logits.Slice(j * c.VocabSize, c.VocabSize));
            }
            var hidden = new float[sequences * prompt.Length * c.Dim];
            model.Embed([.. Enumerable.Repeat(prompt, sequences).SelectMany(p => p)], hidden);
            model.ForwardToLogits([.. caches.SelectMany(cache => TokenRow.Consecutive(cache, 0, prompt.Length))], hidden, null,
                [.. Enumerable.Range(1, sequences).Select(s => s * prompt.Length - 1)], TakeGreedy);

            var step = new float[sequences * c.Dim];
            int[] everyRow = [.. Enumerable.Range(0, sequences)];
            return measure(() =>
            {
                for (int t = 0; t < tokens; t++)
                {
                    model.Embed(next, step);
                    model.ForwardToLogits([.. caches.Select(cache => new TokenRow(cache, prompt.Length + t))], step, null, everyRow, TakeGreedy);
                }
            });
        }
        finally
        {
            foreach (var cache in caches) cache.Dispose();
        }
    }

    private static double Seconds(Action steps)
    {
        var clock = Stopwatch.StartNew();
        steps();
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Runs <paramref name="steps"/> with every operation of <paramref name="device"/> timed.</summary>
    private static DeviceProfile Profiled(IlgpuDevice device, Action steps)
    {
        device.StartProfile();
        try
        {
            steps();
        }
        catch
        {
            // Stopping frees the profiling markers.
            device.StopProfile();
            throw;
        }
        return device.StopProfile();
    }

    /// <summary>
    /// Where a decode step's time goes on an ILGPU device created with profiling: after a prefill of the benchmark's
    /// prompt, <paramref name="tokens"/> decode steps with each device operation timed. Compare its busy time per token
    /// with a timed run's wall time per token: the rest is the device waiting on the host (launches, the host's share).
    /// </summary>
    public static DeviceProfile ProfileDecode(TransformerStage model, IlgpuDevice device, ModelBenchmarkOptions o, int tokens)
    {
        var c = model.Config;
        CheckProfiledTokens(c, o, tokens);
        var logits = new float[c.VocabSize];
        using var cache = Prefill(model, RandomPrompt(c, o.PromptTokens, o.Seed), new float[o.PromptTokens * c.Dim], logits, o.PromptTokens + tokens);
        return Profiled(device, () => Decode(model, cache, o.PromptTokens, tokens, logits));
    }

    /// <summary>
    /// <see cref="ProfileDecode"/> for the decode of <see cref="ModelBenchmarkOptions.Sequences"/> sequences at once:
    /// <paramref name="steps"/> steps of one row per sequence, each operation timed: what a step of several sequences
    /// costs beside one of one.
    /// </summary>
    public static DeviceProfile ProfileDecodeTogether(TransformerStage model, IlgpuDevice device, ModelBenchmarkOptions o, int steps)
    {
        var c = model.Config;
        CheckProfiledTokens(c, o, steps);
        return DecodeTogether(model, RandomPrompt(c, o.PromptTokens, o.Seed), o.Sequences, steps, decode => Profiled(device, decode));
    }

    private static void CheckProfiledTokens(ModelConfig c, ModelBenchmarkOptions o, int tokens)
    {
        if (tokens < 1 || o.PromptTokens + tokens > c.MaxSeqLen)
            throw new ArgumentException($"{o.PromptTokens} prompt + {tokens} profiled tokens: need at least 1, within the model's context of {c.MaxSeqLen}");
    }

    /// <summary>Greedy decode of <paramref name="tokens"/> tokens after position <paramref name="start"/> − 1, from its logits.</summary>
    private static void Decode(TransformerStage model, KvCache cache, int start, int tokens, float[] logits)
    {
        var step = new float[model.Config.Dim];
        for (int i = 0; i < tokens; i++)
        {
            int next = Sampler.ArgMax(logits);
            model.Embed([next], step);
            model.ForwardToLogits([new TokenRow(cache, start + i)], step, null, [0], (_, row) => row.CopyTo(logits));
        }
    }

    /// <summary>The benchmark's prompt: <paramref name="tokens"/> ids drawn uniformly from the vocabulary.</summary>
    public static int[] RandomPrompt(ModelConfig c, int tokens, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, tokens).Select(_ => random.Next(c.VocabSize)).ToArray();
    }

    /// <summary>
    /// A dense prefill as measured here: embedding, every block over every token in a fresh cache, and the
    /// last row's logits (all that generation needs). Returns the cache, for decode to continue.
    /// </summary>
    /// <param name="hidden">[prompt.Length, dim] scratch.</param>
    /// <param name="logits">[vocab]: receives the last row's logits.</param>
    /// <param name="length">The tokens decode will take the sequence to, when known: the cache takes that room at once (0: the prompt's).</param>
    public static KvCache Prefill(TransformerStage model, int[] prompt, float[] hidden, float[] logits, int length = 0)
    {
        int dim = model.Config.Dim;
        var cache = model.NewCache(length);
        model.Embed(prompt, hidden);
        model.ForwardToLogits(TokenRow.Consecutive(cache, 0, prompt.Length), hidden.AsSpan(0, prompt.Length * dim), null,
            [prompt.Length - 1], (_, row) => row.CopyTo(logits));
        return cache;
    }

    /// <summary>The median of <paramref name="values"/> (the mean of the middle two for an even count).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        int n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
