using FtpCluster.Grains.Planning;

namespace FtpCluster.Grains.Tests;

public sealed class DeploymentPlannerTests
{
    private static SiloCapacity[] Silos(params double[] capacities) =>
        capacities.Select((c, i) => new SiloCapacity($"silo{i}", c)).ToArray();

    private static int[] Layers(DeploymentPlan plan) => plan.Stages.Select(s => s.LayerCount).ToArray();

    [Fact]
    public void Stages_are_contiguous_cover_every_layer_and_keep_silo_order()
    {
        var plan = DeploymentPlanner.Plan(30, Silos(1, 1, 1, 1));
        Assert.Equal(0, plan.Stages[0].FirstLayer);
        for (int i = 1; i < plan.Stages.Count; i++)
            Assert.Equal(plan.Stages[i - 1].EndLayer, plan.Stages[i].FirstLayer);
        Assert.Equal(30, plan.Stages[^1].EndLayer);
        Assert.Equal(["silo0", "silo1", "silo2", "silo3"], plan.Stages.Select(s => s.Silo));
        Assert.Equal(8, Layers(plan).Max()); // 30 over 4 equal silos: no stage above ceil(30 / 4)
    }

    [Fact]
    public void Equal_silos_split_evenly()
    {
        Assert.Equal([5, 5, 5], Layers(DeploymentPlanner.Plan(15, Silos(1, 1, 1))));
        Assert.Equal(2, Layers(DeploymentPlanner.Plan(5, Silos(1, 1, 1))).Max());
    }

    [Fact]
    public void Uneven_capacities_get_layers_in_proportion()
    {
        Assert.Equal([6, 3], Layers(DeploymentPlanner.Plan(9, Silos(2, 1))));
        Assert.Equal([2, 6, 4], Layers(DeploymentPlanner.Plan(12, Silos(1, 3, 2))));
    }

    [Fact]
    public void One_layer_per_stage_when_stages_equal_layers()
    {
        Assert.Equal([1, 1, 1, 1, 1], Layers(DeploymentPlanner.Plan(5, Silos(1, 9, 1, 1, 1))));
    }

    [Fact]
    public void More_stages_than_layers_is_refused_with_a_clear_message()
    {
        var e = Assert.Throws<ArgumentException>(() => DeploymentPlanner.Plan(5, Silos(1, 1, 1, 1, 1, 1)));
        Assert.Contains("6 stages cannot share 5 layers", e.Message);
    }

    [Fact]
    public void Layer_costs_move_layers_toward_cheaper_blocks()
    {
        // The last four layers cost a quarter each (sparse blocks): 2 + 2 beats any other cut.
        double[] costs = [1, 1, 1, 1, 0.25, 0.25, 0.25, 0.25];
        Assert.Equal([2, 6], Layers(DeploymentPlanner.Plan(8, Silos(1, 1), costs)));
    }

    [Fact]
    public void Memory_budgets_cap_the_layers_a_silo_holds()
    {
        var silos = new[] { new SiloCapacity("big", 10, null), new SiloCapacity("small", 10, 2_000) };
        Assert.Equal([8, 2], Layers(DeploymentPlanner.Plan(10, silos, bytesPerLayer: 1_000)));
        var tight = new[] { new SiloCapacity("a", 1, 1_000), new SiloCapacity("b", 1, 1_000) };
        var e = Assert.Throws<ArgumentException>(() => DeploymentPlanner.Plan(3, tight, bytesPerLayer: 1_000));
        Assert.Contains("memory budgets cannot hold 3 layers", e.Message);
    }

    [Fact]
    public void Bad_capacities_and_empty_clusters_are_refused()
    {
        Assert.Contains("no silos", Assert.Throws<ArgumentException>(() => DeploymentPlanner.Plan(4, [])).Message);
        Assert.Contains("silo1: capacity", Assert.Throws<ArgumentException>(() => DeploymentPlanner.Plan(4, Silos(1, 0))).Message);
        Assert.Contains("2 layer costs for 4 layers", Assert.Throws<ArgumentException>(() => DeploymentPlanner.Plan(4, Silos(1), [1, 1])).Message);
    }

    /// <summary>A traffic-aware schedule's dense prefix is the first stage of the split its costs balance.</summary>
    [Theory]
    [InlineData(10, 3, new[] { 2, 6, 10 })]
    [InlineData(30, 3, new[] { 6, 18, 30 })]
    public void A_traffic_aware_schedule_is_split_where_its_dense_prefix_ends(int layers, int stages, int[] ends)
    {
        var schedule = FtpCluster.Compute.Ftp.SparsitySchedule.TrafficAware(0.4, layers, stages);
        var costs = schedule.PerBlock.Select((s, b) => b == 0 ? 1.0 : 1 - s).ToArray();
        var silos = Enumerable.Range(0, stages).Select(i => new SiloCapacity($"s{i}", 1)).ToArray();
        Assert.Equal(ends, DeploymentPlanner.Plan(layers, silos, costs).Stages.Select(s => s.EndLayer));
    }

    [Fact]
    public void The_last_stage_takes_fewer_layers_by_the_cost_of_its_head()
    {
        var silos = new[] { new SiloCapacity("a", 1), new SiloCapacity("b", 1) };
        Assert.Equal([(0, 15), (15, 30)], DeploymentPlanner.Plan(30, silos).Stages.Select(s => (s.FirstLayer, s.EndLayer)));
        // A head worth 8 layers: 19 + (11 + 8) balances the two.
        Assert.Equal([(0, 19), (19, 30)], DeploymentPlanner.Plan(30, silos, headCost: 8).Stages.Select(s => (s.FirstLayer, s.EndLayer)));
        Assert.Throws<ArgumentException>(() => DeploymentPlanner.Plan(30, silos, headCost: double.NaN));
    }
}
