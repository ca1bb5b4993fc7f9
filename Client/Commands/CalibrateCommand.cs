using System.Diagnostics;
using System.Globalization;
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
    public static int Run(string[] args)
    {
        var a = new Arguments(args, new HashSet<string>());
        var modelOptions = ModelOptions.Read(a);
        string dataPath = a.Required("data");
        string outPath = a.Required("out");
        string sparsityText = a.Required("sparsity");
        string routingText = a.String("routing") ?? RoutingModes.Name(RoutingMode.OnePass);
        int seed = a.Int("seed", 0);
        var defaults = new CalibrationOptions { Sparsity = 0 };
        int population = a.Int("population", defaults.Population);
        int generations = a.Int("generations", defaults.Generations);
        int tuneGenerations = a.Int("tune-generations", defaults.TuneGenerations);
        var training = defaults.Training with
        {
            GuideIterations = a.Int("guide-iterations", defaults.Training.GuideIterations),
            Iterations = a.Int("iterations", defaults.Training.Iterations),
            BatchSequences = a.Int("batch", defaults.Training.BatchSequences),
            LearningRate = a.Float("learning-rate", (float)defaults.Training.LearningRate),
        };
        var dataOptions = new EvalDataOptions
        {
            MaxLength = a.Has("max-len") ? a.Int("max-len", 0) : null,
            MaxSequences = a.Has("max-sequences") ? a.Int("max-sequences", 0) : null,
        };
        a.RejectUnknown();

        if (!double.TryParse(sparsityText, NumberStyles.Float, CultureInfo.InvariantCulture, out double sparsity) || !(sparsity > 0 && sparsity < 1))
            throw new UsageException($"--sparsity expects one mean sparsity in (0, 1), such as 0.3; got '{sparsityText}'");
        RoutingMode routing;
        try
        {
            routing = RoutingModes.Parse(routingText);
        }
        catch (ArgumentException)
        {
            throw new UsageException($"--routing expects one of {string.Join(", ", RoutingModes.Names)}; got '{routingText}'");
        }
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
}
