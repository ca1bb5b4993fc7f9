using FtpCluster.Compute.Ftp;

namespace FtpCluster.Compute.Tests.Ftp;

public sealed class SparsityScheduleTests
{
    [Fact]
    public void Uniform_has_the_sparsity_at_every_block()
    {
        var schedule = SparsitySchedule.Uniform(0.3, 4);
        Assert.Equal(4, schedule.Blocks);
        Assert.Equal([0.3, 0.3, 0.3, 0.3], schedule.PerBlock);
        Assert.Equal(0.3, schedule.Mean, 12);
    }

    [Fact]
    public void Dense_first_block_spreads_the_mean_over_the_other_blocks()
    {
        var schedule = SparsitySchedule.DenseFirstBlock(0.4, 30);
        Assert.Equal(0.0, schedule[0]);
        Assert.All(schedule.PerBlock.Skip(1), s => Assert.Equal(0.4 * 30 / 29, s, 12));
        Assert.Equal(0.4, schedule.Mean, 12);
        Assert.Equal(0.4 * 30 / 29, schedule.MeanOf(1, 10), 12);
    }

    [Theory]
    [InlineData(0.5, 2, "needs 1 at the other blocks")]
    [InlineData(-0.1, 4, "outside [0, 1)")]
    [InlineData(0.2, 1, "at least two layers")]
    public void Dense_first_block_refuses_what_the_other_blocks_cannot_skip(double mean, int layers, string message)
    {
        var error = Assert.Throws<ArgumentException>(() => SparsitySchedule.DenseFirstBlock(mean, layers));
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void Uniform_for_one_pass_routing_keeps_block_0_dense_and_the_mean()
    {
        Assert.Equal([0.3, 0.3, 0.3, 0.3], SparsitySchedule.Uniform(0.3, 4, RoutingMode.Block).PerBlock);
        var onePass = SparsitySchedule.Uniform(0.3, 4, RoutingMode.OnePass);
        Assert.Equal(0, onePass[0]);
        Assert.All(onePass.PerBlock.Skip(1), s => Assert.Equal(0.4, s, 12));
        Assert.Equal(0.3, onePass.Mean, 12);
        Assert.Contains("needs 1.067 at the other blocks", Assert.Throws<ArgumentException>(() => SparsitySchedule.Uniform(0.8, 4, RoutingMode.OnePass)).Message);
        Assert.Contains("at least two layers", Assert.Throws<ArgumentException>(() => SparsitySchedule.Uniform(0.3, 1, RoutingMode.OnePass)).Message);
    }

    [Fact]
    public void Means_of_the_whole_and_of_a_segment()
    {
        var schedule = new SparsitySchedule([0.0, 0.2, 0.6, 0.4]);
        Assert.Equal(0.3, schedule.Mean, 12);
        Assert.Equal(0.5, schedule.MeanOf(2, 4), 12);
        Assert.Equal(0.2, schedule.MeanOf(1, 2), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => schedule.MeanOf(2, 2));
    }

    [Theory]
    [InlineData(new double[0], "at least one block")]
    [InlineData(new[] { 0.2, 1.0 }, "block 1: sparsity 1 is outside [0, 1)")]
    [InlineData(new[] { -0.1 }, "block 0: sparsity -0.1 is outside [0, 1)")]
    [InlineData(new[] { 0.1, 0.2, double.NaN }, "block 2: sparsity NaN is outside [0, 1)")]
    public void Invalid_schedules_are_refused_saying_which_block(double[] sparsity, string message)
    {
        var error = Assert.Throws<ArgumentException>(() => new SparsitySchedule(sparsity));
        Assert.Contains(message, error.Message);
    }

    [Theory]
    [InlineData(10, 0.3, 7)]
    [InlineData(10, 0.25, 7)]   // 2.5 skipped rounds up to 3
    [InlineData(4, 0.125, 3)]   // 0.5 skipped rounds up to 1
    [InlineData(10, 0.0, 10)]
    [InlineData(3, 0.5, 1)]     // 1.5 rounds to 2 skipped
    [InlineData(2, 0.9, 1)]     // 1.8 rounds to 2 skipped, but one token is always kept
    [InlineData(1, 0.9, 1)]     // a one-token decode step is never pruned by count
    [InlineData(0, 0.5, 0)]
    public void Kept_skips_the_rounded_share_but_keeps_at_least_one(int tokens, double sparsity, int kept)
    {
        Assert.Equal(kept, SparsitySchedule.KeptOf(tokens, sparsity));
        Assert.Equal(kept, SparsitySchedule.Uniform(sparsity, 2).Kept(1, tokens));
    }

    [Fact]
    public void A_schedule_for_another_depth_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => SparsitySchedule.Uniform(0.2, 4).RequireBlocks(5));
        Assert.Equal("the sparsity schedule has 4 blocks but the model has 5 layers", error.Message);
    }

    [Theory]
    [InlineData(10, 3, 2, 0.5)]
    [InlineData(30, 3, 6, 0.5)]
    [InlineData(30, 2, 9, 0.5714)]
    public void Traffic_aware_schedules_keep_the_first_stage_dense_and_the_mean(int layers, int stages, int dense, double sparse)
    {
        var schedule = SparsitySchedule.TrafficAware(0.4, layers, stages);
        Assert.Equal(0.4, schedule.Mean, 12);
        Assert.All(schedule.PerBlock.Take(dense), s => Assert.Equal(0, s));
        Assert.All(schedule.PerBlock.Skip(dense), s => Assert.Equal(sparse, s, 4));
    }
}
