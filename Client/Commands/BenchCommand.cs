using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using FtpCluster.Client.Cli;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Benchmarks;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Tokenizers;
using FtpCluster.Grains.Benchmarks;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Placement;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Commands;

/// <summary><c>ftpcluster bench kernels|model|wire|pipeline|transport|detokenize</c>: measured speed, for docs/benchmarks.md.</summary>
internal static class BenchCommand
{
    private static readonly Option<bool> Json = CliOption.Flag("--json", "Prints the results as JSON");

    public static Command Create() => new("bench", "Measured speed, for docs/benchmarks.md.")
    {
        KernelsCommand(), ModelCommand(), WireCommand(), PipelineCommand(), TransportCommand(), DetokenizeCommand(),
    };

    private static readonly Option<bool> Quick = CliOption.Flag("--quick", "Fewer shapes and shorter runs");

    private static Command KernelsCommand()
    {
        var command = new Command("kernels",
            "GEMM GFLOP/s at several shapes against the measured FMA peak, GEMV GB/s (f32, bf16, f16 weights) against the measured read bandwidth, " +
            "and memory-copy GB/s.") { Quick, Json };
        command.SetAction(Kernels);
        return command;
    }

    private static readonly Option<int?> ModelPromptTokens = CliOption.OptionalInt("--prompt-tokens", "N", "Prompt length (default 128; 512 with --router)");

    private static readonly Option<int> ModelGenTokens = CliOption.Int("--gen-tokens", "N", "Tokens decoded per rep (not with --router: prefill only)", 64);

    private static readonly Option<int> ModelReps = CliOption.Int("--reps", "N", "Repetitions; the median is reported", 5);

    private static readonly Option<int> ModelSeed = CliOption.Int("--seed", "N", "Seeds the random prompt", 1);

    private static readonly Option<int> ModelSequences = CliOption.Int("--sequences", "N",
        "Also decode N sequences at once, each prefilled with the prompt: tokens/s over all of them", 1);

    private static readonly Option<int?> ModelProfile = CliOption.OptionalInt("--profile", "N",
        "With an ILGPU device (ilgpu-cpu, cuda): after the timed reps, decode N more tokens with each device operation timed, " +
        "and give device time per step by kind of operation beside the timed wall time per step; with --sequences, N steps of the sequences at once as well");

    private static Command ModelCommand()
    {
        var command = new Command("model", """
            Prefill and decode tokens/s of a whole model in this process; with --router, dense against FTP-pruned prefill of the same prompt,
            alternating: tokens/s of both, the speed-up, the achieved sparsity and the FLOPs ratio.
              bench model --model PATH [--prompt-tokens N] [--gen-tokens N] [--reps N] [--sequences N] [--dtype D] [--profile N] [--json]
              bench model --model PATH --router ROUTER.json [--routing one-pass|block] [--prompt-tokens N] [--reps N] [--dtype D] [--json]
            """);
        ModelOptionGroup.AddTo(command);
        foreach (var option in new Option[] { PruningOptionGroup.Router, PruningOptionGroup.Routing, ModelPromptTokens, ModelGenTokens, ModelReps, ModelSeed, ModelSequences, ModelProfile, Json })
            command.Add(option);
        command.SetAction(Model);
        return command;
    }

    private static readonly Option<int> Hidden = CliOption.Int("--hidden", "N", "The activations' hidden size", 2048);

    private static readonly Option<float> WireSeconds = CliOption.Float("--seconds", "S", "Time per encoding and packet size", 0.5f);

    private static Command WireCommand()
    {
        var command = new Command("wire", "Encode and decode speed of activation packets (the codec alone, no network), per encoding, for 1 MiB and 8 MiB packets.")
        {
            Hidden, WireSeconds, Json,
        };
        command.SetAction(Wire);
        return command;
    }

    private static readonly Option<int> PipelinePromptTokens = CliOption.Int("--prompt-tokens", "N", "Prompt length of the timed prefills", 256);

    private static readonly Option<int> PipelineReps = CliOption.Int("--reps", "N", "Prefills of each engine; medians are reported", 5);

    private static readonly Option<int> Sequences = CliOption.Int("--sequences", "N", "Sequences decoded at once, against one alone", 16);

    private static readonly Option<int> PipelineGenTokens = CliOption.Int("--gen-tokens", "N", "Tokens each decoded sequence generates", 32);

    private static Command PipelineCommand()
    {
        var command = new Command("pipeline", """
            The same prompt prefilled in this process and through the stages, one of each in turn per rep: tokens/s of both, each stage's compute
            per prefill and the time outside it; then decode through the stages, one sequence alone against --sequences at once.
              bench pipeline --model PATH (--stages N | --cluster HOST:PORT) [--prompt-tokens N] [--reps N] [--sequences N] [--gen-tokens N] [--wire W] [--json]
            """);
        ModelOptionGroup.AddTo(command);
        foreach (var option in new Option[] { PipelinePromptTokens, PipelineReps, Sequences, PipelineGenTokens, Json }) command.Add(option);
        ClusterOptionGroup.AddTo(command);
        command.SetAction(PipelineAsync);
        return command;
    }

    private static readonly Option<string> Sizes = CliOption.Text("--sizes", "SIZE[,SIZE...]", "Packet sizes, such as 1MiB, 512KiB, 1MB, 4096 (default 1MiB,8MiB)");

    private static readonly Option<string> InFlight = CliOption.Text("--in-flight", "N[,N...]", "Packets in flight at once (default 1,4)");

    private static readonly Option<float> TransportSeconds = CliOption.Float("--seconds", "S", $"Time per boundary, packet size and packets in flight (at most {MaxTransportSeconds})", 3);

    private static Command TransportCommand()
    {
        var command = new Command("transport", """
            Packets from a grain on each silo to a grain on the next (an embedded cluster of 2 silos by default), timed inside the sending silo:
            throughput and latency per boundary, packet size and packets in flight, the silos' CPU seconds per GB, and loopback TCP without Orleans.
              bench transport [--stages N | --cluster HOST:PORT [--stages N]] [--sizes 1MiB,8MiB] [--in-flight 1,4] [--seconds S] [--json]
            """);
        ClusterOptionGroup.AddTo(command);
        foreach (var option in new Option[] { Sizes, InFlight, TransportSeconds, Json }) command.Add(option);
        command.SetAction(TransportAsync);
        return command;
    }

    private static readonly Option<string> Tokenizer = CliOption.Text("--tokenizer", "PATH",
        "A tokenizer: tokenizer.json, tokenizer.model, a llama2.c tokenizer.bin, a GGUF file, or a folder holding one (required)");

    private static readonly Option<int> AnswerTokens = CliOption.Int("--tokens", "N", "Tokens in the answer", 4000);

    private static readonly Option<int> DetokenizeReps = CliOption.Int("--reps", "N", "Answers of each way, alternating; medians are reported", 5);

    private static Command DetokenizeCommand()
    {
        var command = new Command("detokenize", """
            The text work of one answer with stop strings: after each token its text is searched (and a streamed answer's sent), decoding every
            token so far against decoding incrementally, alternating: milliseconds per answer of both.
              bench detokenize --tokenizer PATH [--tokens N] [--reps N] [--json]
            """) { Tokenizer, AnswerTokens, DetokenizeReps, Json };
        command.SetAction(Detokenize);
        return command;
    }

    private static int Detokenize(ParseResult parse)
    {
        string path = parse.GetValue(Tokenizer) ?? throw new UsageException("bench detokenize needs --tokenizer PATH");
        int tokens = parse.GetValue(AnswerTokens);
        int reps = parse.GetValue(DetokenizeReps);
        if (tokens < 1) throw new UsageException($"--tokens must be at least 1, got {tokens}");
        if (reps < 1) throw new UsageException($"--reps must be at least 1, got {reps}");
        var result = DetokenizeBenchmark.Run(TokenizerLoader.Load(path), tokens, reps);
        if (parse.GetValue(Json))
        {
            CommandSupport.WriteJson(new
            {
                result.Tokens,
                result.Reps,
                WholeDecodeMsPerAnswer = result.WholeDecodeMilliseconds,
                IncrementalMsPerAnswer = result.IncrementalMilliseconds,
                result.Speedup,
            });
            return 0;
        }
        Console.WriteLine($"answer of {result.Tokens} tokens, median of {result.Reps}:");
        Console.WriteLine($"  decoding every token so far  {result.WholeDecodeMilliseconds,10:F1} ms  ({1e3 * result.WholeDecodeMilliseconds / result.Tokens:F1} µs a token)");
        Console.WriteLine($"  decoding incrementally       {result.IncrementalMilliseconds,10:F1} ms  ({1e3 * result.IncrementalMilliseconds / result.Tokens:F1} µs a token)");
        Console.WriteLine($"  {result.Speedup:F0}× less");
        return 0;
    }

    private static int Model(ParseResult parse)
    {
        if (parse.GetValue(PruningOptionGroup.Router) is { } routerPath) return PrunedModel(parse, routerPath);
        if (parse.GetValue(PruningOptionGroup.Routing) is not null) throw new UsageException("--routing needs --router ROUTER.json");
        var modelOptions = ModelOptionGroup.Bind(parse);
        var options = new ModelBenchmarkOptions(parse.GetValue(ModelPromptTokens) ?? 128, parse.GetValue(ModelGenTokens), parse.GetValue(ModelReps),
            parse.GetValue(ModelSeed), parse.GetValue(ModelSequences));
        if (options.Sequences < 1)
            throw new UsageException($"--sequences needs at least 1 sequence, got {options.Sequences}");
        bool json = parse.GetValue(Json);
        int? profileTokens = parse.GetValue(ModelProfile);
        if (profileTokens is < 1)
            throw new UsageException($"--profile needs at least 1 token, got {profileTokens}");
        if (profileTokens is not null && modelOptions.DeviceName == "cpu")
            throw new UsageException("--profile times the operations of an ILGPU device: add --device ilgpu-cpu or --device cuda");

        using var device = modelOptions.CreateDevice(profiling: profileTokens is not null);
        using var model = modelOptions.LoadModel(device);
        var result = ModelBenchmark.Run(model, options);
        DecodeProfileReport? profile = null, togetherProfile = null;
        if (profileTokens is { } steps)
        {
            var ilgpu = (IlgpuDevice)device;
            profile = DecodeProfileReport.Of(ModelBenchmark.ProfileDecode(model, ilgpu, options, steps), steps, 1, 1000 / result.DecodeTokensPerSecond);
            if (result.DecodeTogetherTokensPerSecond is { } together)
                togetherProfile = DecodeProfileReport.Of(ModelBenchmark.ProfileDecodeTogether(model, ilgpu, options, steps), steps,
                    options.Sequences, 1000 * options.Sequences / together);
        }
        if (json)
        {
            CommandSupport.WriteJson(new
            {
                Model = modelOptions.ModelPath,
                Device = device.Description,
                WeightBytes = model.Slice.ResidentBytes,
                result.PromptTokens,
                result.GenTokens,
                result.Reps,
                result.PrefillTokensPerSecond,
                result.DecodeTokensPerSecond,
                result.Sequences,
                result.DecodeTogetherTokensPerSecond,
                DecodeProfile = profile,
                DecodeTogetherProfile = togetherProfile,
            });
        }
        else
        {
            Console.WriteLine($"{modelOptions.ModelPath} on {device.Description}");
            Console.WriteLine($"prefill {result.PrefillTokensPerSecond,8:F1} tokens/s  ({result.PromptTokens} tokens, median of {result.Reps})");
            Console.WriteLine($"decode  {result.DecodeTokensPerSecond,8:F1} tokens/s  ({result.GenTokens} tokens, median of {result.Reps})");
            if (result.DecodeTogetherTokensPerSecond is { } together)
                Console.WriteLine($"decode  {together,8:F1} tokens/s  ({result.Sequences} sequences at once × {result.GenTokens} tokens, median of {result.Reps})");
            profile?.Print();
            togetherProfile?.Print();
        }
        return 0;
    }

    /// <summary>
    /// <c>bench model --profile</c>: device time per decode step by kind of operation, beside the timed wall time per
    /// step; what the device's operations do not cover is the device waiting (launches, the host's share of a step).
    /// A step decodes one token of each of <see cref="Sequences"/> sequences.
    /// </summary>
    private sealed record DecodeProfileReport(int Steps, int Sequences, double WallMsPerStep, double DeviceBusyMsPerStep,
        double OperationsPerStep, IReadOnlyList<DecodeProfileReport.Operation> Operations)
    {
        public sealed record Operation(string Kind, double PerStep, double MsPerStep);

        public static DecodeProfileReport Of(DeviceProfile profile, int steps, int sequences, double wallMsPerStep) => new(
            steps, sequences, wallMsPerStep, 1000 * profile.BusySeconds / steps, (double)profile.Count / steps,
            [.. profile.Operations.Select(o => new Operation(o.Kind, (double)o.Count / steps, 1000 * o.Seconds / steps))]);

        public void Print()
        {
            string step = Sequences == 1 ? "step (1 token)" : $"step ({Sequences} sequences, a token each)";
            Console.WriteLine($"decode profile over {Steps} steps: {OperationsPerStep:F0} device operations per {step}");
            Console.WriteLine($"  {"operation",-24} {"per step",9} {"ms/step",9} {"share",6}");
            foreach (var o in Operations)
                Console.WriteLine($"  {o.Kind,-24} {o.PerStep,9:0.#} {o.MsPerStep,9:F3} {o.MsPerStep / WallMsPerStep,6:P0}");
            Console.WriteLine($"  {"device busy",-24} {"",9} {DeviceBusyMsPerStep,9:F3} {DeviceBusyMsPerStep / WallMsPerStep,6:P0}");
            Console.WriteLine($"  {"wall (timed decode)",-24} {"",9} {WallMsPerStep,9:F3}");
        }
    }

    /// <summary>
    /// <c>bench model --router ROUTER.json</c>: dense against pruned prefill of the same prompt, alternating,
    /// with the FLOPs ratio beside the speed-up. Prefill only: a one-token decode step is not pruned.
    /// </summary>
    private static int PrunedModel(ParseResult parse, string routerPath)
    {
        var modelOptions = ModelOptionGroup.Bind(parse);
        if (parse.IsGiven(ModelGenTokens)) throw new UsageException("--gen-tokens does not apply with --router: the pruned benchmark times prefill only");
        if (parse.IsGiven(ModelSequences)) throw new UsageException("--sequences does not apply with --router: the pruned benchmark times prefill only");
        var mode = parse.GetValue(PruningOptionGroup.Routing) ?? RoutingMode.OnePass;
        string routing = RoutingModes.Name(mode);
        var options = new PrunedPrefillOptions(parse.GetValue(ModelPromptTokens) ?? 512, parse.GetValue(ModelReps), parse.GetValue(ModelSeed))
        {
            Routing = new RoutingOptions { Mode = mode },
        };
        bool json = parse.GetValue(Json);

        RouterArtifact artifact;
        using (var checkpoint = Compute.Models.Checkpoint.Open(modelOptions.ModelPath))
            artifact = RouterArtifact.Load(routerPath, checkpoint);
        using var device = modelOptions.CreateDevice();
        using var model = modelOptions.LoadModel(device);
        var result = PrunedPrefillBenchmark.Run(new TokenPruner(model, artifact.Schedule, artifact.CreateRouter()), options);
        if (json)
        {
            CommandSupport.WriteJson(new
            {
                Model = modelOptions.ModelPath,
                Device = device.Description,
                Router = routerPath,
                RouterKind = artifact.Router.ToString().ToLowerInvariant(),
                Routing = routing,
                SparsityTarget = artifact.Schedule.Mean,
                result.SparsityAchieved,
                result.PromptTokens,
                result.Reps,
                DensePrefillTokensPerSecond = result.DenseTokensPerSecond,
                PrunedPrefillTokensPerSecond = result.PrunedTokensPerSecond,
                result.SpeedUp,
                result.FlopsRatio,
            });
        }
        else
        {
            Console.WriteLine($"{modelOptions.ModelPath} on {device.Description}, {artifact.Router.ToString().ToLowerInvariant()} router, " +
                $"{routing} routing, sparsity {result.SparsityAchieved:P1} (target {artifact.Schedule.Mean:P1})");
            Console.WriteLine($"prefill of {result.PromptTokens} tokens, median of {result.Reps}: dense {result.DenseTokensPerSecond:F1} tokens/s, " +
                $"pruned {result.PrunedTokensPerSecond:F1} tokens/s, speed-up {result.SpeedUp:F2}x, FLOPs {result.FlopsRatio:P1} of dense");
        }
        return 0;
    }

    private static int Kernels(ParseResult parse)
    {
        bool json = parse.GetValue(Json);
        bool quick = parse.GetValue(Quick);
        var result = KernelBenchmark.Run(new KernelBenchmarkOptions(Quick: quick));
        if (json)
        {
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(result, KernelBenchmarkJsonContext.Default.KernelBenchmarkResult));
            return 0;
        }
        Console.WriteLine($"{result.Simd}, {result.Threads} threads: FMA peak {result.FmaPeakGflops:F1} GFLOP/s, read {result.ReadBandwidthGBPerSecond:F1} GB/s, copy {result.CopyBandwidthGBPerSecond:F1} GB/s");
        foreach (var g in result.Gemm)
            Console.WriteLine($"  GEMM {g.M}x{g.N}x{g.K} {g.Storage,-4} {g.Gflops,7:F1} GFLOP/s  {g.PercentOfPeak,5:F1}% of peak");
        foreach (var g in result.Gemv)
            Console.WriteLine($"  GEMV {g.M}x{g.N}x{g.K} {g.Storage,-4} {g.WeightGBPerSecond,7:F1} GB/s      {g.PercentOfReadBandwidth,5:F1}% of read bandwidth{(g.FromMemory ? ", weights from memory" : "")}");
        return 0;
    }

    /// <summary>Encode and decode speed of activation packets (the codec alone, no network).</summary>
    private static int Wire(ParseResult parse)
    {
        int hidden = parse.GetValue(Hidden);
        double seconds = parse.GetValue(WireSeconds);
        bool json = parse.GetValue(Json);
        if (hidden < 1) throw new UsageException($"--hidden must be positive, got {hidden}");
        var results = WireBenchmark.Run(hidden, seconds);
        if (json)
        {
            CommandSupport.WriteJson(results.Select(r => new
            {
                Encoding = r.Encoding.CliWord(),
                r.Rows,
                r.HiddenSize,
                r.ActivationBytes,
                r.EncodedBytes,
                EncodeGbPerSecond = r.EncodeGBps,
                DecodeGbPerSecond = r.DecodeGBps,
                RoundTripGbPerSecond = r.RoundTripGBps,
            }));
            return 0;
        }
        Console.WriteLine("packet      encoding  wire bytes   encode GB/s  decode GB/s  (GB/s of f32 activations)");
        foreach (var r in results)
            Console.WriteLine($"{r.ActivationBytes / (1 << 20),4} MiB    {r.Encoding.CliWord(),-8} {r.EncodedBytes,11:N0} {r.EncodeGBps,12:F2} {r.DecodeGBps,12:F2}");
        return 0;
    }

    /// <summary>
    /// Prefill through a pipeline of stages (an embedded cluster, or --cluster) against the same model in
    /// this process: what splitting the layers over silos costs when nothing else runs.
    /// </summary>
    private static async Task<int> PipelineAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var modelOptions = ModelOptionGroup.Bind(parse);
        var cluster = ClusterOptionGroup.Bind(parse) ?? throw new UsageException("bench pipeline needs --stages N or --cluster HOST:PORT");
        int promptTokens = parse.GetValue(PipelinePromptTokens);
        int reps = parse.GetValue(PipelineReps);
        int sequences = parse.GetValue(Sequences);
        int genTokens = parse.GetValue(PipelineGenTokens);
        bool json = parse.GetValue(Json);
        if (promptTokens < 1 || reps < 1) throw new UsageException("--prompt-tokens and --reps must be at least 1");
        if (sequences < 1 || genTokens < 1) throw new UsageException("--sequences and --gen-tokens must be at least 1");

        // The same prompt in both engines, a prefill of each in turn per rep, so both see the same load of the
        // moment (this machine is often shared). The pipeline generates one greedy token: the time is the prefill's.
        using var device = modelOptions.CreateDevice();
        using var model = modelOptions.LoadModel(device);
        if (promptTokens + 1 > model.Config.MaxSeqLen)
            throw new UsageException($"--prompt-tokens {promptTokens} leaves no room in the model's context of {model.Config.MaxSeqLen}");
        var prompt = ModelBenchmark.RandomPrompt(model.Config, promptTokens, seed: 1);
        var hidden = new float[promptTokens * model.Config.Dim];
        var logits = new float[model.Config.VocabSize];

        await using var session = await PipelineSession.OpenAsync(cluster, modelOptions, pruning: null, cancellationToken);
        var request = new GenerationRequest(prompt, MaxTokens: 1, StopTokens: []);
        var localSeconds = new List<double>();
        var pipelineSeconds = new List<double>();
        StageReport[]? before = null;
        for (int rep = -1; rep < reps; rep++) // rep -1 warms up both engines
        {
            if (rep == 0) before = await session.Coordinator.Reports().WaitAsync(cancellationToken);
            var clock = Stopwatch.StartNew();
            ModelBenchmark.Prefill(model, prompt, hidden, logits).Dispose();
            double local = clock.Elapsed.TotalSeconds;
            clock.Restart();
            await session.Coordinator.Generate(request).WaitAsync(cancellationToken);
            if (rep < 0) continue;
            localSeconds.Add(local);
            pipelineSeconds.Add(clock.Elapsed.TotalSeconds);
        }
        var after = await session.Coordinator.Reports().WaitAsync(cancellationToken);
        // Each stage's own compute per prefill (its compute thread's time, packets decoded and encoded
        // included): what the pipeline's time is beyond their sum is messaging between the processes.
        double[] stageCompute = [.. after.Select((r, i) => (r.ComputeSeconds - before![i].ComputeSeconds) / reps)];
        double localMedian = ModelBenchmark.Median(localSeconds), pipelineMedian = ModelBenchmark.Median(pipelineSeconds);
        double localRate = promptTokens / localMedian, pipeline = promptTokens / pipelineMedian;
        var traffic = await session.TrafficAsync(cancellationToken);

        // Decode: one sequence alone, then many at once, whose steps the coordinator shares in microbatches.
        async Task<double> DecodeTokensPerSecond(int count)
        {
            var requests = Enumerable.Range(0, count).Select(i => new GenerationRequest(
                prompt[..Math.Min(8, prompt.Length)], MaxTokens: genTokens, StopTokens: [], Temperature: 1, Seed: i)).ToArray();
            var clock = Stopwatch.StartNew();
            var replies = await Task.WhenAll(requests.Select(r => session.Coordinator.Generate(r))).WaitAsync(cancellationToken);
            return replies.Sum(r => r.Ids.Length - r.PromptIds.Length) / clock.Elapsed.TotalSeconds;
        }
        // Untimed first: decode runs code the prefills did not (one-row products, sampling), which a fresh silo
        // would otherwise still be compiling and tiering up during the first measurement.
        await DecodeTokensPerSecond(sequences);
        var beforeDecode = await session.Coordinator.Reports().WaitAsync(cancellationToken);
        double decodeOne = await DecodeTokensPerSecond(1);
        var afterDecode = await session.Coordinator.Reports().WaitAsync(cancellationToken);
        // One sequence's steps (its 8-token prompt, then one token a step): each stage's compute per step.
        double[] decodeStageCompute = [.. afterDecode.Select((r, i) => (r.ComputeSeconds - beforeDecode[i].ComputeSeconds) / (r.Microbatches - beforeDecode[i].Microbatches))];
        double decodeMany = await DecodeTokensPerSecond(sequences);
        if (json)
        {
            CommandSupport.WriteJson(new
            {
                Model = modelOptions.ModelPath,
                DeploymentId = session.DeploymentId,
                PromptTokens = promptTokens,
                Reps = reps,
                traffic.Stages,
                LocalPrefillTokensPerSecond = localRate,
                PipelinePrefillTokensPerSecond = pipeline,
                Ratio = pipeline / localRate,
                LocalPrefillSeconds = localMedian,
                PipelinePrefillSeconds = pipelineMedian,
                StageComputeSecondsPerPrefill = stageCompute,
                WireBytesPerPrefill = traffic.WireBytes.Select(b => b / (reps + 1)).ToArray(),
                GenTokens = genTokens,
                Sequences = sequences,
                DecodeTokensPerSecondOneSequence = decodeOne,
                DecodeStageComputeSecondsPerStep = decodeStageCompute,
                DecodeTokensPerSecondManySequences = decodeMany,
            });
            return 0;
        }
        Console.WriteLine($"prefill of {promptTokens} tokens, median of {reps}: one process {localRate:F1} tokens/s, " +
            $"{traffic.Stages.Length} stages {pipeline:F1} tokens/s ({pipeline / localRate:P1})");
        Console.WriteLine($"per prefill: one process {localMedian * 1e3:F1} ms; the stages {pipelineMedian * 1e3:F1} ms, of which each stage's compute " +
            string.Join(" + ", stageCompute.Select(c => $"{c * 1e3:F1}")) + $" ms (means), the rest {(pipelineSeconds.Average() - stageCompute.Sum()) * 1e3:F1} ms of the mean {pipelineSeconds.Average() * 1e3:F1} ms");
        Console.WriteLine($"decode through the stages: 1 sequence {decodeOne:F1} tokens/s, {sequences} at once {decodeMany:F1} tokens/s in all ({decodeMany / decodeOne:F1}x)");
        Console.WriteLine($"decode of 1 sequence, per step: {1e3 / decodeOne:F1} ms, of which each stage's compute " +
            string.Join(" + ", decodeStageCompute.Select(c => $"{c * 1e3:F2}")) + " ms (means)");
        return 0;
    }

    /// <summary>
    /// bench transport's limit on --seconds: the client waits for each measurement (a tenth more for the
    /// warm-up) under Orleans' 30 s response timeout.
    /// </summary>
    private const double MaxTransportSeconds = 20;

    /// <summary>The loopback baseline's larger read: what reads beyond Orleans' own 4 KiB give (FtpCluster's transport reads more still).</summary>
    private const int LargeLoopbackReadBytes = 64 << 10;

    /// <summary>
    /// Activation transport between silos: a probe grain on each silo sends packets to a sink grain on the
    /// next and times its own calls, per boundary, packet size and number of packets in flight.
    /// </summary>
    private static async Task<int> TransportAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        if (parse.IsGiven(ClusterOptionGroup.Wire)) throw new UsageException("bench transport sends raw bytes: --wire does not apply");
        var target = ClusterOptionGroup.Bind(parse) ?? new ClusterTarget(2, null, ClusterTarget.DefaultClusterId, WireEncoding.F32);
        int[] sizes = ParseList(parse.GetValue(Sizes) ?? "1MiB,8MiB", "sizes", "a size (e.g. 1MiB, 512KiB, 1MB, 4096)", ParseByteSize);
        int[] inFlight = ParseList(parse.GetValue(InFlight) ?? "1,4", "in-flight", "a positive count", ParseCount);
        double seconds = parse.GetValue(TransportSeconds);
        bool json = parse.GetValue(Json);
        if (target.Stages is < 2) throw new UsageException($"a boundary needs two silos: --stages must be at least 2, got {target.Stages}");
        if (sizes.Max() > MessageLimits.MaxPacketBytes)
            throw new UsageException($"--sizes: {sizes.Max()} bytes is over the largest packet a deployment may send ({MessageLimits.MaxPacketBytes} bytes)");
        if (seconds is not (> 0 and <= MaxTransportSeconds))
            throw new UsageException($"--seconds must be above 0 and at most {MaxTransportSeconds}, got {seconds}");

        // Its own embedded silos host the probes; a running cluster's must have been started with --benchmark-grains.
        await using var cluster = await CommandCluster.OpenAsync(target, silo => silo.BenchmarkGrains = true, cancellationToken);
        var nodes = (await cluster.Client.GetGrain<IClusterNodesGrain>(0).GetActiveNodes().WaitAsync(cancellationToken))
            .Select(n => n.NodeName).Take(target.Stages ?? int.MaxValue).ToArray();
        if (nodes.Length < (target.Stages ?? 2))
            throw new InvalidOperationException($"{target.Stages ?? 2} silos are needed, {nodes.Length} are up ({string.Join(", ", nodes)})");

        // Boundaries one at a time, never together: on one machine they would share its cores.
        string run = Guid.NewGuid().ToString("N")[..8];
        var boundaries = new List<(string Source, string Target, TransportMeasurement[] Results)>();
        for (int i = 0; i + 1 < nodes.Length; i++)
        {
            var probe = cluster.Client.GetGrain<ITransportProbeGrain>(NodePinnedKey.Create($"transport-{run}/probe-{i}", nodes[i]));
            string sinkKey = NodePinnedKey.Create($"transport-{run}/sink-{i}", nodes[i + 1]);
            var results = new List<TransportMeasurement>();
            foreach (int size in sizes)
                foreach (int packets in inFlight)
                    results.Add(await probe.Measure(new TransportProbeRequest(sinkKey, size, packets, seconds)).WaitAsync(cancellationToken));
            boundaries.Add((nodes[i], nodes[i + 1], [.. results]));
        }
        // The machine's own loopback ceiling, under the load of the moment: Orleans' read size and a larger one.
        var loopback = new[] { LoopbackStreamBenchmark.OrleansReadBytes, LargeLoopbackReadBytes }
            .Select(readBytes => (ReadBytes: readBytes, BytesPerSecond: LoopbackStreamBenchmark.BytesPerSecond(readBytes, TimeSpan.FromSeconds(seconds))))
            .ToArray();

        if (json)
        {
            CommandSupport.WriteJson(new
            {
                Seconds = seconds,
                Boundaries = boundaries.Select(b => new
                {
                    b.Source,
                    b.Target,
                    Results = b.Results.Select(r => new
                    {
                        r.PacketBytes,
                        r.InFlight,
                        r.Packets,
                        r.Bytes,
                        r.Seconds,
                        r.WarmupPackets,
                        r.BytesPerSecond,
                        GbPerSecond = r.BytesPerSecond / 1e9,
                        r.PacketsPerSecond,
                        LatencyP50Ms = r.LatencyP50Milliseconds,
                        LatencyP90Ms = r.LatencyP90Milliseconds,
                        LatencyMaxMs = r.LatencyMaxMilliseconds,
                        r.SenderCpuSeconds,
                        r.ReceiverCpuSeconds,
                        r.CpuSecondsPerGigabyte,
                        r.SenderTransport,
                        r.ReceiverTransport,
                        r.ReceiverBytesPerReceive,
                    }),
                }),
                LoopbackTcp = loopback.Select(l => new { l.ReadBytes, GbPerSecond = l.BytesPerSecond / 1e9 }),
            });
            return 0;
        }
        Console.WriteLine($"({seconds:G} s each, timed in the sending silo; CPU: both silo processes, seconds per GB delivered; KiB/receive: the receiving silo's mean read)");
        Console.WriteLine("boundary  packet     in flight     MB/s   GB/s  packets/s  latency p50 (ms)  CPU s/GB  KiB/receive");
        foreach (var (source, targetNode, results) in boundaries)
            foreach (var r in results)
                Console.WriteLine($"{source + " -> " + targetNode,-9} {FormatBytes(r.PacketBytes),-10} {r.InFlight,9} {r.BytesPerSecond / 1e6,8:F1} {r.BytesPerSecond / 1e9,6:F2} {r.PacketsPerSecond,10:F1} {r.LatencyP50Milliseconds,17:F2} {r.CpuSecondsPerGigabyte,9:F2} {r.ReceiverBytesPerReceive / 1024,12:F1}");
        Console.WriteLine("loopback TCP in this process, no Orleans: " + string.Join(", ", loopback.Select(l =>
            $"{FormatBytes(l.ReadBytes)} reads{(l.ReadBytes == LoopbackStreamBenchmark.OrleansReadBytes ? " (as Orleans' own transport)" : "")} {l.BytesPerSecond / 1e9:F2} GB/s")));
        return 0;
    }

    /// <summary>Comma-separated values of one option; <paramref name="what"/> describes a valid one for the error.</summary>
    private static T[] ParseList<T>(string text, string option, string what, Func<string, T?> parse) where T : struct
    {
        var items = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (items.Length == 0) throw new UsageException($"--{option} needs at least one value");
        return [.. items.Select(item => parse(item) ?? throw new UsageException($"--{option}: '{item}' is not {what}"))];
    }

    private static int? ParseCount(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int count) && count > 0 ? count : null;

    /// <summary>Bytes, with an optional unit: KiB and MiB are powers of 1024, KB and MB of 1000.</summary>
    private static int? ParseByteSize(string text)
    {
        (string Unit, long Factor)[] units = [("KiB", 1L << 10), ("MiB", 1L << 20), ("KB", 1000), ("MB", 1000_000), ("B", 1)];
        long factor = 1;
        foreach (var (unit, unitFactor) in units)
        {
            if (!text.EndsWith(unit, StringComparison.OrdinalIgnoreCase)) continue;
            text = text[..^unit.Length].TrimEnd();
            factor = unitFactor;
            break;
        }
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long count)
            && count > 0 && count * factor <= int.MaxValue ? (int)(count * factor) : null;
    }

    private static string FormatBytes(int bytes) =>
        bytes % (1 << 20) == 0 ? $"{bytes >> 20} MiB" : bytes % (1 << 10) == 0 ? $"{bytes >> 10} KiB" : $"{bytes:N0} B";
}
