using System.Globalization;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Numerics;

namespace FtpCluster.Compute.Calibration;

public sealed record CalibrationOptions
{
    /// <summary>The mean sparsity over all blocks.</summary>
    public required double Sparsity { get; init; }

    /// <summary>The routing the router is calibrated for (one-pass: what the cluster runs).</summary>
    public RoutingMode Routing { get; init; } = RoutingMode.OnePass;

    /// <summary>Every random choice of every phase follows from it: the same inputs and seed give the same artifact.</summary>
    public ulong Seed { get; init; }

    public int Population { get; init; } = 16;

    /// <summary>Generations of the schedule search with the static router.</summary>
    public int Generations { get; init; } = 10;

    /// <summary>Generations of the schedule fine-tune with the trained router.</summary>
    public int TuneGenerations { get; init; } = 5;

    /// <summary>Router training; its seed is replaced by one drawn from <see cref="Seed"/>.</summary>
    public TrainingOptions Training { get; init; } = new();
}

/// <summary>
/// <c>ftpcluster calibrate</c>: FTP's calibration of a frozen model, phase by phase.
/// <list type="number">
/// <item>Redundancy profile: per block, the cosine of each token's block input and output (<see cref="BlockInfluence.Profile"/>).</item>
/// <item>Schedule search with the static router (<see cref="ScheduleSearch"/>), starting from the uniform
/// schedule and one shaped by the profile (sparsity in proportion to each block's fraction of tokens above
/// cosine 0.8); block by block also from the uniform schedule with block 0 dense.</item>
/// <item>Router training on that schedule (<see cref="RouterTraining"/>).</item>
/// <item>Schedule fine-tune: the search again, scored with the trained router, starting from the searched schedule.</item>
/// </list>
/// Every phase is scored by <see cref="CalibrationObjective"/> on the calibration data, and the artifact's
/// metrics hold the scores before and after each phase (calibration figures, not held-out ones).
/// </summary>
public static class Calibrator
{
    public static RouterArtifact Calibrate(TransformerStage model, string modelFingerprint, IReadOnlyList<int[]> sequences,
        CalibrationOptions options, Action<string>? log = null)
    {
        log ??= _ => { };
        int layers = model.Config.Layers;
        double target = options.Sparsity;
        var routing = options.Routing;
        var seeds = new Xoshiro256StarStar(options.Seed);
        var metrics = new Dictionary<string, double>
        {
            ["target_sparsity"] = target,
            ["one_pass"] = routing == RoutingMode.OnePass ? 1 : 0,
            ["sequences"] = sequences.Count,
            ["tokens"] = sequences.Sum(s => s.Length),
        };

        log($"redundancy: cosine of each token's block input and output over {sequences.Count} sequences");
        var profile = BlockInfluence.Profile(model, sequences);
        for (int b = 0; b < layers; b++)
        {
            metrics[$"redundancy.block{b}.mean_cosine"] = profile.MeanCosine[b];
            metrics[$"redundancy.block{b}.above_{Format(profile.Threshold)}"] = profile.FractionAbove[b];
            log($"redundancy: block {b}: mean cosine {profile.MeanCosine[b]:0.000}, {profile.FractionAbove[b]:P0} of tokens above {Format(profile.Threshold)}");
        }

        var objective = new CalibrationObjective(model, sequences, routing);
        metrics["predictions"] = objective.Predictions;
        var staticRouter = new StaticRouter();
        var uniform = SparsitySchedule.Uniform(target, layers, routing);
        Record(metrics, log, "static_uniform", objective.Score(staticRouter, uniform), uniform);

        var searchOptions = new SearchOptions { Population = options.Population, Generations = options.Generations, Seed = seeds.NextUInt64() };
        List<SparsitySchedule> starts = [uniform, ShapedByRedundancy(profile, target, routing)];
        // Block by block, block 0 is routed before any block has scored a token (every rank ties), so the
        // search also starts from the uniform schedule that keeps it dense.
        if (routing == RoutingMode.Block) starts.Add(SparsitySchedule.Uniform(target, layers, RoutingMode.OnePass));
        var searched = ScheduleSearch.Search(layers, target, routing, s => objective.Score(staticRouter, s).Kl, starts, searchOptions,
            (generation, best) => log($"search: generation {generation}/{options.Generations}: best KL {best.Score:0.00000} {best.Schedule} ({best.Scored} schedules scored)"));
        metrics["search.scored"] = searched.Scored;
        Record(metrics, log, "static_searched", objective.Score(staticRouter, searched.Schedule), searched.Schedule);

        var training = options.Training with { Seed = seeds.NextUInt64() };
        var trained = RouterTraining.Train(objective, searched.Schedule, training,
            (iteration, score, best) => log(iteration == 0
                ? $"train: guide warm-up ({training.GuideIterations} iterations): KL {score.Kl:0.00000}"
                : $"train: iteration {iteration}/{training.Iterations}: KL {score.Kl:0.00000} (best {best.Score.Kl:0.00000} at {best.Iteration})"));
        metrics["train.best_iteration"] = trained.Iteration;
        Record(metrics, log, "learned_trained", trained.Score, searched.Schedule);

        var tuneOptions = new SearchOptions { Population = options.Population, Generations = options.TuneGenerations, Seed = seeds.NextUInt64() };
        var tuned = ScheduleSearch.Search(layers, target, routing, s => objective.Score(trained.Router, s).Kl,
            [searched.Schedule], tuneOptions,
            (generation, best) => log($"tune: generation {generation}/{options.TuneGenerations}: best KL {best.Score:0.00000} {best.Schedule} ({best.Scored} schedules scored)"));
        metrics["tune.scored"] = tuned.Scored;
        Record(metrics, log, "learned_tuned", objective.Score(trained.Router, tuned.Schedule), tuned.Schedule);
        // What eval's "static" method runs beside the artifact: the static router on the final schedule.
        Record(metrics, log, "static_tuned", objective.Score(staticRouter, tuned.Schedule), tuned.Schedule);

        return RouterArtifact.From(trained.Router, tuned.Schedule, modelFingerprint, metrics);
    }

    /// <summary>
    /// The target spread over the blocks that may skip in proportion to each one's fraction of tokens above
    /// the profile's threshold (a block that barely changes most tokens can skip most), capped at the
    /// search's maximum; the search repairs the mean. Uniform when no block has such tokens.
    /// </summary>
    private static SparsitySchedule ShapedByRedundancy(RedundancyProfile profile, double target, RoutingMode routing)
    {
        int layers = profile.FractionAbove.Length;
        int first = routing == RoutingMode.OnePass ? 1 : 0;
        double weights = profile.FractionAbove.Skip(first).Sum();
        if (weights == 0) return SparsitySchedule.Uniform(target, layers, routing);
        return new SparsitySchedule(Enumerable.Range(0, layers).Select(b =>
            b < first ? 0 : Math.Min(ScheduleSearch.MaxBlockSparsity, target * layers * profile.FractionAbove[b] / weights)));
    }

    private static void Record(Dictionary<string, double> metrics, Action<string> log, string phase, ObjectiveScore score, SparsitySchedule schedule)
    {
        metrics[$"{phase}.kl"] = score.Kl;
        metrics[$"{phase}.ppl_ratio"] = score.PerplexityRatio;
        metrics[$"{phase}.top1_agreement"] = score.Top1Agreement;
        log($"{phase}: KL {score.Kl:0.00000}, ppl ratio {score.PerplexityRatio:0.0000}, top-1 {score.Top1Agreement:P1}, schedule {schedule}");
    }

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);
}
