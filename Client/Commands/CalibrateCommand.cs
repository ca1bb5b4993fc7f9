using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using FtpCluster.Client.Cli;
using FtpCluster.Compute.Calibration;
using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Models;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster calibrate</c>: the redundancy profile, the schedule search, router training and the
/// schedule fine-tune (<see cref="Calibrator"/>) on a calibration data set, written as a router artifact.
/// Progress goes to stderr, one line per step of each phase.
/// </summary>
internal static class CalibrateCommand
{
    /// <summary>The defaults of every calibration setting the command line can change.</summary>
    private static readonly CalibrationOptions Defaults = new() { Sparsity = 0 };

    private static readonly Option<string> Data = CliOption.Text("--data", "FILE",
        "The calibration data (required): JSON lines ({\"ids\"} or {\"text\"}, as generate --samples writes them) or plain text");

    private static readonly Option<string> Sparsity = CliOption.Text("--sparsity", "S", "The mean sparsity to calibrate for, in (0, 1) (required)");

    private static readonly Option<RoutingMode?> Routing = CliOption.Parsed<RoutingMode?>("--routing", "one-pass|block",
        "The routing calibrated for (default one-pass, what a cluster runs)", word => ParseRouting(word), RoutingModes.Names);

    private static readonly Option<int> Seed = CliOption.Int("--seed", "N", "Seeds every random choice: the same seed gives the same artifact", 0);

    private static readonly Option<string> Out = CliOption.Text("--out", "ROUTER.json", "Where the router artifact is written (required)");

    private static readonly Option<int> Population = CliOption.Int("--population", "N", "Schedules per generation of the schedule search", Defaults.Population);

    private static readonly Option<int> Generations = CliOption.Int("--generations", "N", "Generations of the schedule search", Defaults.Generations);

    private static readonly Option<int> TuneGenerations = CliOption.Int("--tune-generations", "N",
        "Generations of the schedule fine-tune with the trained router", Defaults.TuneGenerations);

    private static readonly Option<int> GuideIterations = CliOption.Int("--guide-iterations", "N",
        "Router training steps toward the static router's choices alone, before distillation", Defaults.Training.GuideIterations);

    private static readonly Option<int> Iterations = CliOption.Int("--iterations", "N", "Router training steps in all", Defaults.Training.Iterations);

    private static readonly Option<int> Batch = CliOption.Int("--batch", "N", "Sequences per router training step", Defaults.Training.BatchSequences);

    private static readonly Option<float> LearningRate = CliOption.Float("--learning-rate", "X", "The router's learning rate", (float)Defaults.Training.LearningRate);

    private static readonly Option<int?> MaxSequences = CliOption.OptionalInt("--max-sequences", "N", "Reads at most N sequences of the data");

    private static readonly Option<int?> MaxLen = CliOption.OptionalInt("--max-len", "N", "Cuts longer sequences into pieces (default and at most: the model's context)");

    public static Command Create()
    {
        var command = new Command("calibrate", """
            FTP calibration of a router for one mean sparsity: redundancy profile, schedule search, router training, schedule fine-tune; writes a router artifact.
              calibrate --model PATH --data FILE --sparsity S --out ROUTER.json [options]
            """);
        ModelOptionGroup.AddTo(command);
        foreach (var option in new Option[] { Data, Sparsity, Routing, Seed, Out, Population, Generations, TuneGenerations, GuideIterations, Iterations, Batch, LearningRate, MaxSequences, MaxLen })
            command.Add(option);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        var modelOptions = ModelOptionGroup.Bind(parse);
        string dataPath = parse.Required(Data);
        string outPath = parse.Required(Out);
        string sparsityText = parse.Required(Sparsity);
        var routing = parse.GetValue(Routing) ?? RoutingMode.OnePass;
        int seed = parse.GetValue(Seed);
        int population = parse.GetValue(Population);
        int generations = parse.GetValue(Generations);
        int tuneGenerations = parse.GetValue(TuneGenerations);
        var training = Defaults.Training with
        {
            GuideIterations = parse.GetValue(GuideIterations),
            Iterations = parse.GetValue(Iterations),
            BatchSequences = parse.GetValue(Batch),
            LearningRate = parse.GetValue(LearningRate),
        };
        var dataOptions = new EvalDataOptions { MaxLength = parse.GetValue(MaxLen), MaxSequences = parse.GetValue(MaxSequences) };

        if (!double.TryParse(sparsityText, NumberStyles.Float, CultureInfo.InvariantCulture, out double sparsity) || !(sparsity > 0 && sparsity < 1))
            throw new UsageException($"--sparsity expects one mean sparsity in (0, 1), such as 0.3; got '{sparsityText}'");
        if (seed < 0) throw new UsageException($"--seed must be >= 0, got {seed}");
        if (dataOptions.MaxSequences is < 1) throw new UsageException($"--max-sequences must be >= 1, got {dataOptions.MaxSequences}");
        var options = new CalibrationOptions
        {
            Sparsity = sparsity, Routing = routing, Seed = (ulong)seed, Population = population, Generations = generations,
            TuneGenerations = tuneGenerations, Training = training,
        };
        try
        {
            new SearchOptions { Population = population, Generations = generations }.Validate();
            new SearchOptions { Population = population, Generations = tuneGenerations }.Validate();
            training.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        using var device = modelOptions.CreateDevice();
        using var model = modelOptions.LoadModel(device);
        string fingerprint;
        using (var checkpoint = Checkpoint.Open(modelOptions.ModelPath)) fingerprint = ModelFingerprint.Of(checkpoint);
        var tokenizer = modelOptions.LoadTokenizer(model.Config);
        var data = EvalCommand.LoadData("data", dataPath, tokenizer, model, dataOptions);
        Console.Error.WriteLine($"calibrate: mean sparsity {sparsity}, {RoutingModes.Name(routing)} routing, seed {seed}");

        var clock = Stopwatch.StartNew();
        var artifact = Calibrator.Calibrate(model, fingerprint, [.. data.Sequences.Select(s => s.Ids)], options,
            line => Console.Error.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.0}s] {line}"));
        artifact.Save(outPath);
        Console.Error.WriteLine($"wrote {outPath}: schedule {artifact.Schedule} (mean {artifact.Schedule.Mean:0.####}) in {clock.Elapsed.TotalSeconds:0.0}s");
        return 0;
    }

    private static RoutingMode ParseRouting(string word)
    {
        try
        {
            return RoutingModes.Parse(word);
        }
        catch (ArgumentException)
        {
            throw new UsageException($"--routing expects one of {string.Join(", ", RoutingModes.Names)}; got '{word}'");
        }
    }
}
