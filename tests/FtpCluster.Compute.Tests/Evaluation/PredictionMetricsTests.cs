using FtpCluster.Compute.Evaluation;

namespace FtpCluster.Compute.Tests.Evaluation;

public sealed class PredictionMetricsTests
{
    [Fact]
    public void A_two_token_example_worked_by_hand()
    {
        // Dense: p = (1/2, 1/2). Method: logits (ln 3, 0), so q = (3/4, 1/4). The next token is 1.
        var metrics = new PredictionMetrics();
        metrics.Add([0f, 0f], [MathF.Log(3), 0f], nextToken: 1);
        Assert.Equal(4, metrics.Perplexity, 5);                           // 1 / q(1)
        Assert.Equal(0.5 * Math.Log(0.5 / 0.75) + 0.5 * Math.Log(0.5 / 0.25), metrics.MeanKl, 6);
        Assert.Equal(1, metrics.Top1Agreement);                            // a tie picks the first token, as greedy does
    }

    [Fact]
    public void Perplexity_agreement_and_kl_match_a_plain_float64_computation()
    {
        var random = new Random(11);
        const int vocab = 37, predictions = 50;
        var metrics = new PredictionMetrics();
        double nll = 0, kl = 0;
        int agreements = 0;
        for (int i = 0; i < predictions; i++)
        {
            var dense = Enumerable.Range(0, vocab).Select(_ => (float)(random.NextDouble() * 8 - 4)).ToArray();
            // Half the rows perturbed a little (top-1 usually kept), half a lot (usually not).
            double noise = i % 2 == 0 ? 0.3 : 4;
            var method = dense.Select(l => (float)(l + (random.NextDouble() - 0.5) * noise)).ToArray();
            int next = random.Next(vocab);
            metrics.Add(dense, method, next);

            var p = Softmax(dense);
            var q = Softmax(method);
            nll -= Math.Log(q[next]);
            kl += p.Select((pv, v) => pv * Math.Log(pv / q[v])).Sum();
            if (Array.IndexOf(p, p.Max()) == Array.IndexOf(q, q.Max())) agreements++;
        }
        Assert.Equal(predictions, metrics.Predictions);
        Assert.Equal(Math.Exp(nll / predictions), metrics.Perplexity, 9);
        Assert.Equal(kl / predictions, metrics.MeanKl, 9);
        Assert.Equal((double)agreements / predictions, metrics.Top1Agreement);
        Assert.InRange(agreements, 1, predictions - 1);
    }

    [Fact]
    public void Identical_predictions_agree_fully_with_no_divergence()
    {
        var random = new Random(3);
        var metrics = new PredictionMetrics();
        var reference = new PredictionMetrics();
        for (int i = 0; i < 20; i++)
        {
            var logits = Enumerable.Range(0, 64).Select(_ => (float)(random.NextDouble() * 20 - 10)).ToArray();
            metrics.Add(logits, logits, i);
            reference.Add(logits, logits, i);
        }
        Assert.Equal(0, metrics.MeanKl);
        Assert.Equal(1, metrics.Top1Agreement);
        Assert.Equal(reference.Perplexity, metrics.Perplexity);
    }

    [Fact]
    public void Rows_of_a_sequence_predict_the_token_after_them()
    {
        // Three positions, vocabulary 4; each dense row puts its mass on a different token.
        float[] dense = [9, 0, 0, 0, 0, 9, 0, 0, 0, 0, 9, 0];
        int[] ids = [3, 1, 2];
        var metrics = new PredictionMetrics();
        metrics.AddRows(dense, dense, ids, 0..2, vocab: 4);
        // Row 0 predicts ids[1] = 1 (p ≈ 1e-4), row 1 predicts ids[2] = 2 (p ≈ 1e-4): both unlikely.
        double q = Math.Exp(0) / (Math.Exp(9) + 3);
        Assert.Equal(2, metrics.Predictions);
        Assert.Equal(1 / q, metrics.Perplexity, 3);
    }

    [Fact]
    public void A_next_token_outside_the_vocabulary_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PredictionMetrics().Add([0f, 1f], [0f, 1f], 2));
    }

    private static double[] Softmax(float[] logits)
    {
        var e = logits.Select(l => Math.Exp(l)).ToArray();
        double sum = e.Sum();
        return e.Select(x => x / sum).ToArray();
    }
}
