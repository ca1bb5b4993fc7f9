using System.CommandLine;
using System.Globalization;
using FtpCluster.Client.Cli;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster eval</c>: the dense model against each pruning method at each target sparsity, on the
/// continuations of a data set (<see cref="Evaluator"/>), token-routing methods once per routing mode. With
/// --router, each calibrated artifact's mean sparsity is a target, and there the baselines share its
/// schedule (<see cref="EvalMethods"/>). With --stages/--cluster, each router also runs through the stages
/// for its bytes on the wire; with --stage-aware as well, every routed method is evaluated a second time in
/// one pass with the stage-aware plan of the stages the router was deployed on. A table, or with --json the
/// report object; --plot draws sparsity against the perplexity ratio.
/// </summary>
internal static class EvalCommand
{
    private static readonly double[] DefaultSparsities = [0.2, 0.3, 0.4];
    private const string DefaultMethods = "dense,shortgpt,static,random,uniform";
    private static readonly RoutingMode[] DefaultRoutings = [RoutingMode.Block, RoutingMode.OnePass];

    /// <summary>How many data problems are printed one by one before the rest are only counted.</summary>
    private const int ProblemsShown = 10;

    private static readonly Option<string> Data = CliOption.Text("--data", "FILE",
        "The evaluation data (required): JSON lines ({\"ids\"} or {\"text\"}, as generate --samples writes them) or plain text (documents separated by blank lines)");

    private static readonly Option<string> Calibration = CliOption.Text("--calibration", "FILE",
        "Data for ShortGPT's Block Influence (default: the evaluation data); overlap with --data is reported");

    private static readonly Option<string> Sparsity = CliOption.Text("--sparsity", "S[,S...]", "Target mean sparsities in [0, 1) (default 0.2,0.3,0.4)");

    private static readonly Option<string> Routers = CliOption.Text("--router", "R[,R...]",
        "Router artifacts, one per target: the targets are their mean sparsities, and learned is among the default methods");

    private static readonly Option<string> Methods = CliOption.Text("--methods", "M[,M...]",
        $"Methods among {string.Join(", ", EvalMethods.Names)} (default {DefaultMethods}, and learned with --router); dense, the reference, is always reported")
        .Completing(EvalMethods.Names);

    private static readonly Option<string> Routings = CliOption.Text("--routing", "block,one-pass",
        "The routings every token-routing method runs in (default both)").Completing(RoutingModes.Names);

    private static readonly Option<int> Seed = CliOption.Int("--seed", "N", "Seeds the random router", 0);

    private static readonly Option<int?> MaxSequences = CliOption.OptionalInt("--max-sequences", "N", "Reads at most N sequences of the data");

    private static readonly Option<int?> MaxLen = CliOption.OptionalInt("--max-len", "N", "Cuts longer sequences into pieces (default and at most: the model's context)");

    private static readonly Option<int> MinLen = CliOption.Int("--min-len", "N", "Skips shorter sequences", Continuation.MinSequenceLength);

    private static readonly Option<bool> Json = CliOption.Flag("--json", "Prints the report as JSON instead of a table");

    private static readonly Option<string> Plot = CliOption.Text("--plot", "FILE.png", "Draws achieved sparsity against the perplexity ratio (and the wire bytes ratio where measured)");

    public static Command Create()
    {
        var command = new Command("eval", """
            The dense model against each pruning method at each target mean sparsity, on the continuations of a data set;
            with --router and CLUSTER also each router's bytes between stages and each stage's compute against the plan,
            and with --stage-aware each routed method's stage-aware plan beside its per-block one.
              eval --model PATH --data FILE [--sparsity S[,S...] | --router R[,R...]] [options] [CLUSTER [--stage-aware]]
            """);
        ModelOptionGroup.AddTo(command);
        foreach (var option in new Option[] { Data, Calibration, Sparsity, Routers, Methods, Routings, Seed, MaxSequences, MaxLen, MinLen, Json, Plot })
            command.Add(option);
        ClusterOptionGroup.AddTo(command);
        command.Add(PruningOptionGroup.StageAware);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        var modelOptions = ModelOptionGroup.Bind(parse);
        var cluster = ClusterOptionGroup.Bind(parse);
        bool stageAware = parse.GetValue(PruningOptionGroup.StageAware);
        string dataPath = parse.Required(Data);
        string? calibrationPath = parse.GetValue(Calibration);
        string? sparsityText = parse.GetValue(Sparsity);
        var routerPaths = parse.GetValue(Routers) is { } r ? r.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : [];
        var routings = parse.GetValue(Routings) is { } routingText ? ParseRoutings(routingText) : DefaultRoutings;
        // The learned router is among the defaults exactly when there is one to run.
        var methods = ParseMethods(parse.GetValue(Methods) ?? DefaultMethods + (routerPaths.Length > 0 ? ",learned" : ""));
        int seed = parse.GetValue(Seed);
        var dataOptions = new EvalDataOptions
        {
            MaxLength = parse.GetValue(MaxLen),
            MaxSequences = parse.GetValue(MaxSequences),
            MinLength = parse.GetValue(MinLen),
        };
        bool json = parse.GetValue(Json);
        string? plotPath = parse.GetValue(Plot);
        if (dataOptions.MaxSequences is < 1) throw new UsageException($"--max-sequences must be >= 1, got {dataOptions.MaxSequences}");
        if (dataOptions.MinLength < Continuation.MinSequenceLength)
            throw new UsageException($"--min-len must be at least {Continuation.MinSequenceLength} (a context and a continuation of {Continuation.MinTokens} tokens), got {dataOptions.MinLength}");
        if (dataOptions.MaxLength < dataOptions.MinLength)
            throw new UsageException($"--max-len {dataOptions.MaxLength} is below the minimum length {dataOptions.MinLength}");
        if (seed < 0) throw new UsageException($"--seed must be >= 0, got {seed}");
        if (sparsityText is not null && routerPaths.Length > 0)
            throw new UsageException("--sparsity and --router both set the targets: with --router, each router's mean sparsity is a target");
        if (cluster is not null && routerPaths.Length == 0)
            throw new UsageException("--stages and --cluster measure a router's traffic through the stages: pass --router ROUTER.json");
        if (stageAware && cluster is null) throw new UsageException("--stage-aware needs --stages N or --cluster HOST:PORT");
        if (stageAware && !routings.Contains(RoutingMode.OnePass))
            throw new UsageException("--stage-aware plans in one pass: --routing must include one-pass");
        if (cluster is not null) modelOptions.CheckUsableWith(cluster);
        if (routerPaths.Length == 0 && methods.FirstOrDefault(m => m.NeedsRouter) is { } needy)
            throw new UsageException($"--methods {needy.Name} runs a calibrated router: pass --router ROUTER.json (from ftpcluster calibrate)");

        using var device = modelOptions.CreateDevice();
        using var model = modelOptions.LoadModel(device);
        var tokenizer = modelOptions.LoadTokenizer(model.Config);
        var routers = LoadRouters(routerPaths, modelOptions.ModelPath);
        var sparsities = routers.Count > 0 ? [.. routers.Select(EvalMethodContext.TargetOf)]
            : sparsityText is not null ? ParseSparsities(sparsityText) : DefaultSparsities;
        var data = LoadData("data", dataPath, tokenizer, model, dataOptions);
        var calibration = calibrationPath is null ? data : LoadData("calibration", calibrationPath, tokenizer, model, dataOptions);
        int? overlap = calibrationPath is null ? null : data.CountShared(calibration.Sequences);
        if (overlap > 0)
            Console.Error.WriteLine($"warning: {overlap} of the {data.Sequences.Count} evaluation sequences also occur in the calibration data");

        // Through stages, the cluster runs first: a stage-aware plan's segments are the stages each router's
        // deployment was planned on, so the quality figures are those of the plans the stages ran.
        ClusterMeasure[]? measures = null;
        if (cluster is not null)
        {
            using var interruption = new Cluster.Interruption();
            measures = EvalOnCluster.MeasureAsync(cluster, modelOptions, routerPaths, stageAware, data.Sequences, interruption.Token)
                .GetAwaiter().GetResult();
            foreach (var m in measures)
                Console.Error.WriteLine($"cluster: {m.Router}: {m.PrunedBytes:N0} bytes between stages with {m.Wire}, {m.WireBytesRatio:P1} of dense f32's {m.DenseBytes:N0}; "
                    + string.Join(", ", m.Stages.Select(s => $"{s.Silo} [{s.Layers[0]}, {s.Layers[1]}) planned {s.PlannedShare:P0} measured {s.MeasuredShare:P0}")));
        }
        var context = new EvalMethodContext(model, calibration.Sequences, routers, (ulong)seed);
        IReadOnlyList<LayerRange>? StagesAt(double sparsity)
        {
            if (!stageAware || context.RouterAt(sparsity) is not { } router) return null;
            var measure = measures![routers.IndexOf(router)]; // one measure per router, in the routers' order
            return [.. measure.Stages.Select(stage => new LayerRange(stage.Layers[0], stage.Layers[1]))];
        }
        var evaluated = new List<IEvalMethod>();
        foreach (var method in methods.Where(m => m.Name != "dense"))
        {
            if (!method.TakesSparsity)
            {
                evaluated.Add(method.Create(context, 0, new RoutingOptions { Mode = RoutingMode.OnePass }));
                continue;
            }
            foreach (double sparsity in sparsities)
            {
                // A fixed plan (block removal) does not route, so it is evaluated once, not once per routing.
                foreach (var routing in method.Routed ? routings : routings.Take(1))
                {
                    evaluated.Add(method.Create(context, sparsity, new RoutingOptions { Mode = routing }));
                    // Beside each one-pass plan, the stage-aware one: the difference is what skipping whole stages costs.
                    if (method.Routed && routing == RoutingMode.OnePass && StagesAt(sparsity) is { } stages)
                        evaluated.Add(method.Create(context, sparsity, new RoutingOptions { Mode = routing, Stages = stages }));
                }
            }
        }
        var progress = new ProgressLine("eval", data.Sequences.Count);
        var results = Evaluator.Evaluate(model, data.Sequences, evaluated, progress.Report);
        if (measures is not null) results = EvalOnCluster.WithWireBytes(results, routers, measures, stageAware);
        var report = new EvalReport
        {
            Model = modelOptions.ModelPath,
            Data = dataPath,
            Sequences = data.Sequences.Count,
            ContinuationTokens = data.ContinuationTokens,
            Results = results,
            Tokens = data.Tokens,
            Calibration = calibrationPath,
            CalibrationOverlap = overlap,
            Routers = routerPaths.Length > 0 ? routerPaths : null,
            Cluster = measures,
        };

        Console.WriteLine(json ? report.ToJson() : report.ToTable());
        if (plotPath is not null)
        {
            EvalPlot.Write(report, plotPath);
            Console.Error.WriteLine($"plot: {plotPath}");
        }
        return 0;
    }

    /// <summary>Loads a data set, saying on stderr what was skipped and why; no usable sequence at all is an error.</summary>
    internal static EvalDataset LoadData(string role, string path, ITokenizer? tokenizer, TransformerStage model, EvalDataOptions options)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{role} file not found: {path}");
        EvalDataset data;
        try
        {
            data = EvalDataset.Load(path, tokenizer, model.Config.VocabSize, model.Config.MaxSeqLen, options);
        }
        catch (InvalidDataException e) when (tokenizer is null)
        {
            throw new UsageException($"{e.Message}: pass --tokenizer PATH");
        }
        foreach (var problem in data.Problems.Take(ProblemsShown)) Console.Error.WriteLine($"{role}: {problem}");
        if (data.Problems.Count > ProblemsShown) Console.Error.WriteLine($"{role}: ... and {data.Problems.Count - ProblemsShown} more lines skipped");

        var skipped = new List<string>();
        if (data.Problems.Count > 0) skipped.Add($"{data.Problems.Count} bad lines skipped");
        if (data.TooShort > 0) skipped.Add($"{data.TooShort} shorter than {options.MinLength} tokens skipped");
        if (data.Cut > 0) skipped.Add($"{data.Cut} longer than {Math.Min(options.MaxLength ?? int.MaxValue, model.Config.MaxSeqLen)} tokens cut into pieces");
        if (data.StoppedEarly) skipped.Add($"stopped at --max-sequences {options.MaxSequences}");
        Console.Error.WriteLine($"{role}: {path}: {data.Sequences.Count} sequences, {data.Tokens} tokens" + (skipped.Count > 0 ? $" ({string.Join("; ", skipped)})" : ""));
        if (data.Sequences.Count == 0)
            throw new InvalidOperationException($"{path}: no sequence of at least {options.MinLength} tokens to use");
        return data;
    }

    /// <summary>Router artifacts, each checked against the model's fingerprint; one that belongs to another model is refused.</summary>
    private static List<RouterArtifact> LoadRouters(string[] paths, string modelPath)
    {
        if (paths.Length == 0) return [];
        using var checkpoint = Checkpoint.Open(modelPath);
        var routers = new List<RouterArtifact>();
        foreach (var path in paths)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"router file not found: {path}");
            var router = RouterArtifact.Load(path, checkpoint);
            Console.Error.WriteLine($"router: {path}: {router.Router.ToString().ToLowerInvariant()}, mean sparsity {router.Schedule.Mean:0.####}, schedule {router.Schedule}");
            routers.Add(router);
        }
        var targets = routers.Select(EvalMethodContext.TargetOf).ToList();
        if (targets.Distinct().Count() != targets.Count)
            throw new UsageException($"--router: two routers have the same mean sparsity ({string.Join(", ", targets)}): give one per target");
        return routers;
    }

    /// <summary>"block,one-pass": the routing modes every routed method is run in.</summary>
    private static RoutingMode[] ParseRoutings(string text)
    {
        var modes = new List<RoutingMode>();
        foreach (var name in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct())
        {
            try
            {
                modes.Add(RoutingModes.Parse(name));
            }
            catch (ArgumentException)
            {
                throw new UsageException($"--routing: unknown routing '{name}' (known: {string.Join(", ", RoutingModes.Names)})");
            }
        }
        if (modes.Count == 0) throw new UsageException($"--routing names no routing (known: {string.Join(", ", RoutingModes.Names)})");
        return [.. modes];
    }

    /// <summary>"0.2,0.3,0.4": the target mean sparsities every method that takes one is run at.</summary>
    private static double[] ParseSparsities(string text)
    {
        var values = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !(value >= 0 && value < 1))
                throw new UsageException($"--sparsity expects numbers in [0, 1) separated by commas, such as 0.2,0.3,0.4; got '{part}'");
            values.Add(value);
        }
        return [.. values.Distinct()];
    }

    /// <summary>"dense,shortgpt": the methods to evaluate, by name; dense is always reported as the reference.</summary>
    private static List<EvalMethodEntry> ParseMethods(string text)
    {
        var entries = new List<EvalMethodEntry>();
        foreach (var name in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct())
        {
            try
            {
                entries.Add(EvalMethods.Find(name));
            }
            catch (ArgumentException)
            {
                throw new UsageException($"--methods: unknown method '{name}' (known: {string.Join(", ", EvalMethods.Names)})");
            }
        }
        if (entries.Count == 0) throw new UsageException($"--methods names no method (known: {string.Join(", ", EvalMethods.Names)})");
        return entries;
    }
}
