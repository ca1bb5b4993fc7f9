using FtpCluster.Compute.Calibration;
using FtpCluster.Compute.Ftp;

namespace FtpCluster.Compute.Tests.Calibration;

/// <summary>The genetic schedule search on made-up scores (no model): the constraint it keeps and that it searches.</summary>
public sealed class ScheduleSearchTests
{
    /// <summary>Squared distance from a schedule the search does not know: a score with one best answer.</summary>
    private static double DistanceFrom(SparsitySchedule goal, SparsitySchedule schedule) =>
        Enumerable.Range(0, goal.Blocks).Sum(b => (schedule[b] - goal[b]) * (schedule[b] - goal[b]));

    [Theory]
    [InlineData(RoutingMode.OnePass, 0.3, 4)]
    [InlineData(RoutingMode.OnePass, 0.4, 5)]
    [InlineData(RoutingMode.Block, 0.2, 4)]
    [InlineData(RoutingMode.Block, 0.33, 7)]
    public void Every_schedule_scored_keeps_the_mean_and_the_bounds(RoutingMode routing, double target, int layers)
    {
        var scored = new List<SparsitySchedule>();
        var goal = new SparsitySchedule(Enumerable.Range(0, layers).Select(b => routing == RoutingMode.OnePass && b == 0 ? 0 : 0.05 + 0.9 * b / layers));
        var result = ScheduleSearch.Search(layers, target, routing, s => { scored.Add(s); return DistanceFrom(goal, s); },
            [SparsitySchedule.Uniform(target, layers, routing), new SparsitySchedule(Enumerable.Repeat(0.0, layers))],
            new SearchOptions { Population = 8, Generations = 6, Seed = 3 });

        Assert.True(scored.Count > 8);
        Assert.Equal(scored.Count, result.Scored);
        // Whole units, summing to the target's units exactly: the mean is the target up to that rounding.
        int total = (int)Math.Round(target * layers * ScheduleSearch.UnitsPerBlock, MidpointRounding.AwayFromZero);
        foreach (var schedule in scored.Append(result.Schedule))
        {
            var units = schedule.PerBlock.Select(s => s * ScheduleSearch.UnitsPerBlock).ToArray();
            Assert.All(units, u => Assert.Equal(Math.Round(u), u, 9));
            Assert.Equal(total, (int)Math.Round(units.Sum()));
            Assert.InRange(Math.Abs(schedule.Mean - target), 0, 0.5 / (layers * ScheduleSearch.UnitsPerBlock) + 1e-12);
            Assert.All(schedule.PerBlock, s => Assert.InRange(s, 0, ScheduleSearch.MaxBlockSparsity));
            if (routing == RoutingMode.OnePass) Assert.Equal(0, schedule[0]);
        }
    }

    [Fact]
    public void The_search_improves_on_its_start_and_is_deterministic_by_seed()
    {
        var goal = new SparsitySchedule([0, 0.1, 0.4, 0.7]);
        var start = SparsitySchedule.Uniform(0.3, 4, RoutingMode.OnePass);
        SearchResult Run(ulong seed) => ScheduleSearch.Search(4, 0.3, RoutingMode.OnePass, s => DistanceFrom(goal, s), [start],
            new SearchOptions { Population = 12, Generations = 15, Seed = seed });

        var result = Run(7);
        Assert.True(result.Score < DistanceFrom(goal, start) / 10, $"best {result.Schedule} scores {result.Score}");
        Assert.Equal(result.Schedule.PerBlock, Run(7).Schedule.PerBlock);
        Assert.Equal(result.Score, DistanceFrom(goal, result.Schedule));
    }

    [Fact]
    public void An_unreachable_target_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => ScheduleSearch.Search(4, 0.7, RoutingMode.OnePass, _ => 0,
            [SparsitySchedule.Uniform(0.6, 4)], new SearchOptions()));
        Assert.Contains("block 0 is dense", error.Message);
    }
}
