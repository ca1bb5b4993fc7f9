using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Evaluation;

/// <summary>What a method did with one sequence.</summary>
/// <param name="Logits">[ids.Length, vocab]: row r predicts the token after position r.</param>
/// <param name="ComputedRows">
/// Per block of the model, the sorted row indices (= positions) the block computed; an empty array is a
/// block that computed nothing. Achieved sparsity and FLOPs are counted from these, never from the target.
/// </param>
public sealed record MethodOutput(float[] Logits, IReadOnlyList<int[]> ComputedRows);

/// <summary>
/// A way of running the model on a sequence that <see cref="Evaluator"/> compares with the dense model:
/// dense itself, ShortGPT-style block removal, and the FTP routers.
/// </summary>
public interface IEvalMethod
{
    /// <summary>The method's name in results: "dense", "shortgpt", "static", "learned", "random", "uniform".</summary>
    string Name { get; }

    /// <summary>
    /// "block" when the method decides block by block as the hidden rows change; "one-pass" when every
    /// block's rows are known before the first row moves (what a pipeline of stages can run). A fixed plan
    /// such as dense or block removal is one-pass.
    /// </summary>
    string Routing { get; }

    /// <summary>The mean fraction of token-blocks the method was asked to skip (0 for dense).</summary>
    double SparsityTarget { get; }

    /// <summary>
    /// The stage segments a stage-aware one-pass plan chose rows for, one set per segment
    /// (<see cref="OnePassPlan.Decide"/>); null when rows are chosen per block.
    /// </summary>
    IReadOnlyList<LayerRange>? Stages { get; }

    MethodOutput Run(int[] ids);
}

/// <summary>What a method may need when it is set up: the model, the data to calibrate on, router artifacts.</summary>
public sealed class EvalMethodContext
{
    private readonly Lazy<double[]> _blockInfluence;

    /// <param name="routers">Router artifacts, at most one per mean sparsity (rounded to <see cref="TargetDigits"/> digits).</param>
    /// <param name="seed">The random router's seed.</param>
    public EvalMethodContext(TransformerStage model, IReadOnlyList<EvalSequence> calibration, IReadOnlyList<RouterArtifact>? routers = null, ulong seed = 0)
    {
        if (calibration.Count == 0) throw new ArgumentException("calibration needs at least one sequence", nameof(calibration));
        Model = model;
        Calibration = calibration;
        Routers = routers ?? [];
        Seed = seed;
        foreach (var router in Routers) router.Schedule.RequireBlocks(model.Config.Layers);
        var targets = Routers.Select(TargetOf).ToList();
        if (targets.Distinct().Count() != targets.Count)
            throw new ArgumentException($"two router artifacts have the same mean sparsity ({string.Join(", ", targets)}): give one per target");
        _blockInfluence = new(() => Evaluation.BlockInfluence.Measure(model, calibration.Select(s => s.Ids)));
    }

    /// <summary>A target's digits: an artifact's mean is the target up to its schedule's rounding.</summary>
    public const int TargetDigits = 6;

    public TransformerStage Model { get; }

    /// <summary>Sequences a method may calibrate on: the evaluation data unless separate data was given.</summary>
    public IReadOnlyList<EvalSequence> Calibration { get; }

    public IReadOnlyList<RouterArtifact> Routers { get; }

    public ulong Seed { get; }

    /// <summary>ShortGPT's Block Influence of each block on <see cref="Calibration"/>, measured once when first asked for.</summary>
    public double[] BlockInfluence => _blockInfluence.Value;

    /// <summary>The mean sparsity an artifact's schedule targets.</summary>
    public static double TargetOf(RouterArtifact router) => Math.Round(router.Schedule.Mean, TargetDigits);

    /// <summary>The artifact calibrated for <paramref name="target"/>, or null.</summary>
    public RouterArtifact? RouterAt(double target) => Routers.FirstOrDefault(r => TargetOf(r) == Math.Round(target, TargetDigits));

    /// <summary>
    /// The schedule the static and random baselines run at <paramref name="target"/>: the artifact's, when
    /// one was calibrated for that target (the same schedule as the learned router), else the uniform
    /// schedule for the routing (<see cref="SparsitySchedule.Uniform(double, int, RoutingMode)"/>).
    /// </summary>
    public SparsitySchedule ScheduleAt(double target, RoutingMode routing) =>
        RouterAt(target)?.Schedule ?? SparsitySchedule.Uniform(target, Model.Config.Layers, routing);
}

/// <summary>A method by name: how to set it up at a target sparsity and routing.</summary>
/// <param name="TakesSparsity">False for a method that has no sparsity (dense): it is evaluated once, not once per target.</param>
/// <param name="Routed">True for token routing, evaluated once per routing (mode, and stage segments for a stage-aware
/// one-pass plan); false for a fixed plan (dense, block removal), evaluated once.</param>
/// <param name="NeedsRouter">True when it runs a calibrated router artifact (eval --router).</param>
public sealed record EvalMethodEntry(string Name, bool TakesSparsity, bool Routed, bool NeedsRouter,
    Func<EvalMethodContext, double, RoutingOptions, IEvalMethod> Create);

/// <summary>
/// The methods <c>ftpcluster eval --methods</c> knows; a new method is one entry here. The token-routing
/// baselines at equal mean sparsity:
/// <list type="bullet">
/// <item>static: first token, then the most recent; on the artifact's schedule for the target, else uniform.</item>
/// <item>random: uniform random skipping on the same schedule as static.</item>
/// <item>uniform: the uniform schedule for the routing, with the artifact's router, else the static router.</item>
/// <item>learned: the artifact's router and schedule.</item>
/// </list>
/// </summary>
public static class EvalMethods
{
    public static IReadOnlyList<EvalMethodEntry> Known { get; } =
    [
        new("dense", TakesSparsity: false, Routed: false, NeedsRouter: false, (context, _, _) => new DenseMethod(context.Model)),
        new("shortgpt", TakesSparsity: true, Routed: false, NeedsRouter: false,
            (context, sparsity, _) => new ShortGptMethod(context.Model, context.BlockInfluence, sparsity)),
        new("static", TakesSparsity: true, Routed: true, NeedsRouter: false,
            (context, sparsity, routing) => new RoutedMethod(context.Model, "static", sparsity, routing, context.ScheduleAt(sparsity, routing.Mode), new StaticRouter())),
        new("random", TakesSparsity: true, Routed: true, NeedsRouter: false,
            (context, sparsity, routing) => new RoutedMethod(context.Model, "random", sparsity, routing, context.ScheduleAt(sparsity, routing.Mode), new RandomRouter(context.Seed))),
        new("uniform", TakesSparsity: true, Routed: true, NeedsRouter: false,
            (context, sparsity, routing) => new RoutedMethod(context.Model, "uniform", sparsity, routing,
                SparsitySchedule.Uniform(sparsity, context.Model.Config.Layers, routing.Mode), context.RouterAt(sparsity)?.CreateRouter() ?? new StaticRouter())),
        new("learned", TakesSparsity: true, Routed: true, NeedsRouter: true,
            (context, sparsity, routing) =>
            {
                var artifact = LearnedAt(context, sparsity);
                return new RoutedMethod(context.Model, "learned", sparsity, routing, artifact.Schedule, artifact.CreateRouter());
            }),
    ];

    public static IReadOnlyList<string> Names => [.. Known.Select(m => m.Name)];

    /// <summary>The entry of that name; an unknown name is an <see cref="ArgumentException"/> listing the known ones.</summary>
    public static EvalMethodEntry Find(string name) =>
        Known.FirstOrDefault(m => m.Name == name)
        ?? throw new ArgumentException($"unknown method '{name}' (known: {string.Join(", ", Names)})", nameof(name));

    /// <summary>The artifact for <paramref name="sparsity"/>, which must hold a learned router.</summary>
    private static RouterArtifact LearnedAt(EvalMethodContext context, double sparsity)
    {
        var artifact = context.RouterAt(sparsity)
            ?? throw new InvalidOperationException($"no router artifact was calibrated for a mean sparsity of {sparsity}");
        if (artifact.Router != RouterKind.Learned)
            throw new InvalidOperationException($"the router artifact for a mean sparsity of {sparsity} holds a {artifact.Router.ToString().ToLowerInvariant()} router, not a learned one");
        return artifact;
    }
}
