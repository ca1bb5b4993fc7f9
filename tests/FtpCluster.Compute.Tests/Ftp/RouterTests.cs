using FtpCluster.Compute.Ftp;

namespace FtpCluster.Compute.Tests.Ftp;

/// <summary>Features, selection and the three routers, on hand-made tokens (no model).</summary>
public sealed class RouterTests
{
    /// <summary>One sequence of <paramref name="scores"/>.Length new tokens at positions 0, 1, ..., with these latest scores.</summary>
    private static RoutingBatch Sequence(params float[] scores)
    {
        var batch = new RoutingBatch(Enumerable.Range(0, scores.Length).ToArray(), [new SequenceRows(0, scores.Length, [])]);
        batch.Update(scores);
        return batch;
    }

    private static int[] Choose(ITokenRouter router, RoutingBatch batch, double sparsity, bool pruneNewest = false) =>
        batch.Choose(router, batch.Features(sparsity), sparsity, pruneNewest);

    [Fact]
    public void Ranks_are_mid_ranks_over_the_whole_sequence_earlier_tokens_included()
    {
        // Two tokens from an earlier step (scores 0.1, 0.3) and two new ones; all four count.
        var batch = new RoutingBatch([2, 3], [new SequenceRows(0, 2, [0.1f, 0.3f])]);
        var initial = batch.Features(0.4);
        Assert.Equal(new RouterFeatures(2, RouterFeatures.InitialScore, 0.25f, 0.4f), initial[0]); // two zeros below 0.1, 0.3
        batch.Update([0.3f, float.NaN]);
        var features = batch.Features(0.4);
        Assert.Equal(new RouterFeatures(2, 0.3f, 0.75f, 0.4f), features[0]); // ties with the earlier 0.3: (2 + ½·2) / 4
        Assert.Equal(new RouterFeatures(3, 0f, 0.125f, 0.4f), features[1]);  // skipped: keeps its initial score, lowest
    }

    [Fact]
    public void Before_any_block_every_token_ties_at_rank_one_half()
    {
        var batch = new RoutingBatch([0, 1, 2], [new SequenceRows(0, 3, [])]);
        Assert.All(batch.Features(0.2), f => Assert.Equal((0f, 0.5f), (f.Score, f.Rank)));
    }

    [Fact]
    public void Static_router_keeps_the_first_token_then_the_most_recent()
    {
        var batch = Sequence(0.9f, 0.01f, 0.8f, 0.01f, 0.01f, 0.7f, 0.01f, 0.01f, 0.01f, 0.01f);
        Assert.Equal([0, 5, 6, 7, 8, 9], Choose(new StaticRouter(), batch, 0.4));   // skips positions 1, 2, 3, 4
        Assert.Equal([0, 8, 9], Choose(new StaticRouter(), batch, 0.7));
        // The newest is always computed, so with room for one token that is it, not the first.
        Assert.Equal([9], Choose(new StaticRouter(), batch, 0.95));
    }

    [Fact]
    public void Static_router_in_a_decode_step_keeps_the_newest()
    {
        var batch = new RoutingBatch([12], [new SequenceRows(0, 1, [0.5f, 0.1f, 0.2f])]);
        Assert.Equal([0], batch.Choose(new StaticRouter(), batch.Features(0.6), 0.6, pruneNewest: true));
    }

    [Fact]
    public void Random_router_is_deterministic_by_seed_and_keeps_exactly_the_quota()
    {
        var batch = new RoutingBatch(Enumerable.Range(0, 40).ToArray(), [new SequenceRows(0, 25, []), new SequenceRows(25, 15, [])]);
        double[] sparsity = [0.1, 0.3, 0.5, 0.75];
        int[][] Run(ulong seed)
        {
            var router = new RandomRouter(seed);
            return sparsity.Select(s => Choose(router, batch, s)).ToArray();
        }
        var first = Run(5);
        Assert.Equal(first, Run(5));
        Assert.NotEqual(first, Run(6));
        for (int i = 0; i < sparsity.Length; i++)
        {
            Assert.Equal(SparsitySchedule.KeptOf(25, sparsity[i]), first[i].Count(r => r < 25));
            Assert.Equal(SparsitySchedule.KeptOf(15, sparsity[i]), first[i].Count(r => r >= 25));
            Assert.Contains(24, first[i]);
            Assert.Contains(39, first[i]);
        }
    }

    [Fact]
    public void Random_router_skips_each_older_token_about_equally_often()
    {
        var batch = Sequence(new float[10]);
        var router = new RandomRouter(1);
        var kept = new int[10];
        for (int trial = 0; trial < 4000; trial++)
            foreach (int r in Choose(router, batch, 0.5)) kept[r]++;
        Assert.Equal(4000, kept[9]);
        // Each of the 9 older tokens takes one of the 4 other places: 4/9 of the trials, about 1778.
        Assert.All(kept[..9], k => Assert.InRange(k, 1650, 1900));
    }

    /// <summary>
    /// logit = log relative position + 1000 · relu(rank − 0.75): the older tokens with the most attention, then
    /// the most recent. The log relative position is at most 0, so unit 0 passes its negation and weighs it −1.
    /// </summary>
    private static LearnedRouter RecentOrAttended()
    {
        var p = new float[RouterMlp.ParameterCount];
        const int firstBias = RouterMlp.Hidden * RouterMlp.Inputs, outputWeights = firstBias + RouterMlp.Hidden;
        p[0 * RouterMlp.Inputs + 0] = -1;     // unit 0: −log relative position
        p[outputWeights + 0] = -1;
        p[1 * RouterMlp.Inputs + 2] = 1;      // unit 1: rank − 0.75
        p[firstBias + 1] = -0.75f;
        p[outputWeights + 1] = 1000;
        return new LearnedRouter(new RouterMlp(p), FeatureNormalization.Identity);
    }

    [Fact]
    public void Learned_router_can_keep_first_recent_and_attended_tokens()
    {
        // The first token and token 3 get the most attention; static routing would keep 0, 6, 7, 8, 9.
        var batch = Sequence(0.5f, 0.02f, 0.03f, 0.3f, 0.01f, 0.02f, 0.01f, 0.03f, 0.02f, 0.01f);
        Assert.Equal([0, 3, 7, 8, 9], Choose(RecentOrAttended(), batch, 0.5));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(0.6)]
    [InlineData(0.9)]
    public void Learned_router_keeps_the_quota_of_each_sequence(double sparsity)
    {
        var router = new LearnedRouter(RouterMlp.Initial(3), new FeatureNormalization([10, 0.1f, 0.5f, 0.3f], [6, 0.1f, 0.3f, 0.2f]));
        var batch = new RoutingBatch(Enumerable.Range(0, 30).Select(i => i % 20).ToArray(),
            [new SequenceRows(0, 20, []), new SequenceRows(20, 10, [0.2f, 0.1f])]);
        batch.Update(Enumerable.Range(0, 30).Select(i => (i * 37 % 11) / 11f).ToArray());
        var rows = Choose(router, batch, sparsity);
        Assert.Equal(SparsitySchedule.KeptOf(20, sparsity), rows.Count(r => r < 20));
        Assert.Equal(SparsitySchedule.KeptOf(10, sparsity), rows.Count(r => r >= 20));
        Assert.Contains(19, rows);
        Assert.Contains(29, rows);
    }

    [Fact]
    public void With_decode_pruning_the_newest_is_kept_iff_the_router_says_at_least_one_half()
    {
        // logit = 10 · score − 2.5: the threshold keeps a token iff its latest score is at least 0.25. (The newest
        // token's log relative position is 0 in every sequence, so position cannot tell the two apart.)
        var p = new float[RouterMlp.ParameterCount];
        const int firstBias = RouterMlp.Hidden * RouterMlp.Inputs, outputWeights = firstBias + RouterMlp.Hidden;
        p[1] = 1;
        p[outputWeights] = 10;
        p[^1] = -2.5f;
        var router = new LearnedRouter(new RouterMlp(p), FeatureNormalization.Identity);
        var batch = new RoutingBatch([0, 1, 2, 3, 4, 5, 0, 1, 2, 3], [new SequenceRows(0, 6, []), new SequenceRows(6, 4, [])]);
        batch.Update([0.05f, 0.1f, 0.2f, 0.4f, 0.35f, 0.3f, 0.5f, 0.05f, 0.3f, 0.1f]);
        // Quotas at 0.5: 3 of 6 and 2 of 4; the rest take quota − 1 places by logit. The newest of the first
        // sequence (score 0.3) passes the threshold, that of the second (0.1) does not.
        Assert.Equal([3, 4, 5, 6, 9], batch.Choose(router, batch.Features(0.5), 0.5, pruneNewest: false));
        Assert.Equal([3, 4, 5, 6], batch.Choose(router, batch.Features(0.5), 0.5, pruneNewest: true));

        // A decode step: one token, its quota is 1, and only the threshold decides.
        var step = new RoutingBatch([4], [new SequenceRows(0, 1, [0.1f, 0.2f, 0.3f, 0.4f])]);
        Assert.Empty(step.Choose(router, step.Features(0.2), 0.2, pruneNewest: true));
        Assert.Equal([0], step.Choose(router, step.Features(0.2), 0.2, pruneNewest: false));
    }

    [Fact]
    public void Mlp_gradient_matches_finite_differences()
    {
        var mlp = RouterMlp.Initial(7);
        float[] x = [0.3f, -1.2f, 0.8f, 0.1f];
        var gradient = new float[RouterMlp.ParameterCount];
        mlp.AccumulateGradient(x, 2f, gradient);
        const float h = 1e-3f;
        for (int i = 0; i < RouterMlp.ParameterCount; i++)
        {
            float saved = mlp.Parameters[i];
            mlp.Parameters[i] = saved + h;
            double up = mlp.Forward(x);
            mlp.Parameters[i] = saved - h;
            double down = mlp.Forward(x);
            mlp.Parameters[i] = saved;
            double numeric = 2 * (up - down) / (2 * h);
            Assert.True(Math.Abs(numeric - gradient[i]) < 2e-3, $"parameter {i}: analytic {gradient[i]}, numeric {numeric}");
        }
        Assert.Contains(gradient, g => g != 0);
    }

    [Fact]
    public void Initial_mlp_is_deterministic_by_seed()
    {
        Assert.Equal(RouterMlp.Initial(1).Parameters, RouterMlp.Initial(1).Parameters);
        Assert.NotEqual(RouterMlp.Initial(1).Parameters, RouterMlp.Initial(2).Parameters);
        Assert.Throws<ArgumentException>(() => new RouterMlp(new float[10]));
    }

    [Fact]
    public void Normalization_fit_gives_mean_and_std_and_leaves_a_constant_feature_at_scale_one()
    {
        RouterFeatures[] samples = [new(0, 0.1f, 0.25f, 0.3f), new(10, 0.3f, 0.75f, 0.3f)];
        var n = FeatureNormalization.Fit(samples);
        Assert.Equal([5f, 0.2f, 0.5f, 0.3f], n.Mean);
        Assert.Equal(5f, n.Std[0], 5);
        Assert.Equal(0.1f, n.Std[1], 5);
        Assert.Equal(1f, n.Std[3]);
        Span<float> x = stackalloc float[4];
        n.Apply(samples[1], x);
        Assert.Equal(1f, x[0], 5);
        Assert.Equal(0f, x[3], 5);
        Assert.Contains("std 0", Assert.Throws<ArgumentException>(() => new FeatureNormalization([0, 0, 0, 0], [1, 0, 1, 1])).Message);
    }
}
