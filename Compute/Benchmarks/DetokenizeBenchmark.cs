using System.Diagnostics;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Serving;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Compute.Benchmarks;

/// <summary>Milliseconds of text work for one answer: the stop-string search after each of its tokens, on its whole text.</summary>
public sealed record DetokenizeBenchmarkResult(int Tokens, int Reps, double WholeDecodeMilliseconds, double IncrementalMilliseconds)
{
    public double Speedup => WholeDecodeMilliseconds / IncrementalMilliseconds;
}

/// <summary>
/// What a request with stop strings spends on text as its answer grows: after each token the answer's text is searched
/// for the stop strings (and a streamed answer's is sent), either decoding every token so far, or with an
/// <see cref="IncrementalDecoder"/>. The two alternate, rep by rep, on the same answer; medians are reported.
/// </summary>
public static class DetokenizeBenchmark
{
    /// <summary>Prose with numbers, punctuation, newlines and characters outside ASCII, repeated to the answer's length.</summary>
    private const string Prose = """
        The pipeline splits the model into stages, and each stage holds a slice of the blocks. In 2025 there were 3,141
        requests at 59.26 ms each — café, naïve, 漢字, 😀 — and the tokens that matter least were pruned.

        """;

    public static DetokenizeBenchmarkResult Run(ITokenizer tokenizer, int tokens, int reps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(tokens, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(reps, 1);
        int[] answer = Answer(tokenizer, tokens);
        string expected = tokenizer.Decode(answer);
        var whole = new List<double>();
        var incremental = new List<double>();
        // One untimed run of each keeps JIT tiering out of the figures.
        for (int rep = -1; rep < reps; rep++)
        {
            var (wholeMs, wholeText) = Timed(() => DecodingWhole(tokenizer, answer));
            var (incrementalMs, incrementalText) = Timed(() => DecodingIncrementally(tokenizer, answer));
            if (wholeText != expected || incrementalText != expected)
                throw new InvalidOperationException("an answer's text differs from decoding it whole: the benchmark measured something else");
            if (rep < 0) continue;
            whole.Add(wholeMs);
            incremental.Add(incrementalMs);
        }
        return new DetokenizeBenchmarkResult(answer.Length, reps, ModelBenchmark.Median(whole), ModelBenchmark.Median(incremental));
    }

    private static string DecodingWhole(ITokenizer tokenizer, int[] answer)
    {
        var stops = new StopStringMatcher(["\u0001"]);
        string text = "";
        for (int n = 1; n <= answer.Length; n++) stops.TryFind(text = tokenizer.Decode(answer.AsSpan(0, n)), out _);
        return text;
    }

    private static string DecodingIncrementally(ITokenizer tokenizer, int[] answer)
    {
        var stops = new StopStringMatcher(["\u0001"]);
        var decoder = new IncrementalDecoder(tokenizer);
        var generated = new List<int>(answer.Length);
        string text = "";
        foreach (int id in answer)
        {
            generated.Add(id);
            stops.TryFind(text = decoder.Decode(generated), out _);
        }
        return text;
    }

    private static int[] Answer(ITokenizer tokenizer, int tokens)
    {
        int[] prose = tokenizer.Encode(Prose, addBos: false);
        if (prose.Length == 0) throw new InvalidOperationException("the tokenizer encodes the benchmark's text as no tokens");
        return [.. Enumerable.Range(0, tokens).Select(i => prose[i % prose.Length])];
    }

    private static (double Milliseconds, string Text) Timed(Func<string> run)
    {
        long start = Stopwatch.GetTimestamp();
        string text = run();
        return (Stopwatch.GetElapsedTime(start).TotalMilliseconds, text);
    }
}
