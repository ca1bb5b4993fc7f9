using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Tests.Inference;

public sealed class SamplerTests
{
    // Probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 at temperature 1.
    private static readonly float[] Logits = [MathF.Log(8), MathF.Log(4), MathF.Log(2), 0f, 0f];

    private static double[] Frequencies(SamplingOptions options, int draws = 40_000)
    {
        var sampler = new Sampler(options);
        var counts = new double[Logits.Length];
        for (int i = 0; i < draws; i++) counts[sampler.Sample(Logits, i)]++;
        return counts.Select(c => c / draws).ToArray();
    }

    [Fact]
    public void Greedy_takes_the_first_largest_logit()
    {
        var sampler = new Sampler(new SamplingOptions());
        Assert.Equal(0, sampler.Sample(Logits, 0));
        Assert.Equal(1, sampler.Sample([0f, 3f, 3f, 1f], 1));
    }

    [Fact]
    public void Temperature_one_draws_in_proportion_to_the_softmax()
    {
        // 40,000 draws: the standard error of a frequency near 0.5 is 0.0025, so 0.01 is four of them.
        var f = Frequencies(new SamplingOptions { Temperature = 1, Seed = 3 });
        double[] expected = [0.5, 0.25, 0.125, 0.0625, 0.0625];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], f[i], tolerance: 0.01);
    }

    [Fact]
    public void Low_temperature_sharpens_and_high_temperature_flattens()
    {
        Assert.True(Frequencies(new SamplingOptions { Temperature = 0.25f, Seed = 1 })[0] > 0.9);
        var flat = Frequencies(new SamplingOptions { Temperature = 100f, Seed = 1 });
        Assert.All(flat, p => Assert.Equal(0.2, p, tolerance: 0.02));
    }

    [Fact]
    public void Top_k_keeps_only_the_k_most_likely()
    {
        var f = Frequencies(new SamplingOptions { Temperature = 1, TopK = 2, Seed = 5 });
        Assert.Equal(0, f[2] + f[3] + f[4]);
        Assert.Equal(2.0 / 3, f[0], tolerance: 0.01);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_p()
    {
        // 0.5 + 0.25 = 0.75 reaches p = 0.7: tokens 2, 3 and 4 are cut.
        var f = Frequencies(new SamplingOptions { Temperature = 1, TopP = 0.7f, Seed = 7 });
        Assert.Equal(0, f[2] + f[3] + f[4]);
        Assert.Equal(2.0 / 3, f[0], tolerance: 0.01);
    }

    [Fact]
    public void The_same_seed_draws_the_same_sequence_and_another_seed_does_not()
    {
        int[] Draw(int seed)
        {
            var sampler = new Sampler(new SamplingOptions { Temperature = 1, Seed = seed });
            return Enumerable.Range(0, 64).Select(i => sampler.Sample(Logits, i)).ToArray();
        }
        Assert.Equal(Draw(11), Draw(11));
        Assert.NotEqual(Draw(11), Draw(12));
        // A draw depends on its index alone: starting late (a replay) gives the same tokens.
        var late = new Sampler(new SamplingOptions { Temperature = 1, Seed = 11 });
        Assert.Equal(Draw(11)[40..], Enumerable.Range(40, 24).Select(i => late.Sample(Logits, i)));
    }

    [Theory]
    [InlineData(-0.5f, 0, 1f, "temperature")]
    [InlineData(1f, -1, 1f, "top-k")]
    [InlineData(1f, 0, 0f, "top-p")]
    [InlineData(1f, 0, 1.5f, "top-p")]
    public void Bad_options_are_refused_by_name(float temperature, int topK, float topP, string name)
    {
        var e = Assert.Throws<ArgumentException>(() => new Sampler(new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP }));
        Assert.Contains(name, e.Message);
    }

    [SharedModelsFact]
    public void Generation_ends_at_a_stop_token_or_after_max_tokens()
    {
        using var device = new CpuDevice();
        using var model = TransformerStage.Load(SharedModels.PathTo("stories260K", "stories260K.bin"), device);
        var free = Generator.Generate(model, [1], new GenerationOptions { MaxTokens = 10 });
        Assert.Equal("length", free.FinishReason);
        Assert.Equal(11, free.Ids.Length);

        // Make the fourth generated token a stop token: generation ends before it, without it.
        int stop = free.Ids[4];
        int firstStop = Array.IndexOf(free.Ids, stop, 1);
        var stopped = Generator.Generate(model, [1], new GenerationOptions { MaxTokens = 10, StopTokens = new HashSet<int> { stop } });
        Assert.Equal("stop", stopped.FinishReason);
        Assert.Equal(free.Ids[..firstStop], stopped.Ids);
    }
}
