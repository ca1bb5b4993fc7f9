using FtpCluster.Compute.Benchmarks;
using System.Diagnostics;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Commands;

/// <summary><c>ftpcluster bench kernels|model|wire|pipeline</c>: measured speed, for docs/benchmarks.md.</summary>
internal static class BenchCommand
{
    public static int Model(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        if (a.Has("router")) return PrunedModel(a);
        var modelOptions = ModelOptions.Read(a);
        var options = new ModelBenchmarkOptions(a.Int("prompt-tokens", 128), a.Int("gen-tokens", 64), a.Int("reps", 5), a.Int("seed", 1));
        bool json = a.Flag("json");
        a.RejectUnknown();

        using var device = modelOptions.CreateDevice();
        using var model = modelOptions.LoadModel(device);
        var result = ModelBenchmark.Run(model, options);
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
            });
        }
        else
        {
            Console.WriteLine($"{modelOptions.ModelPath} on {device.Description}");
            Console.WriteLine($"prefill {result.PrefillTokensPerSecond,8:F1} tokens/s  ({result.PromptTokens} tokens, median of {result.Reps})");
            Console.WriteLine($"decode  {result.DecodeTokensPerSecond,8:F1} tokens/s  ({result.GenTokens} tokens, median of {result.Reps})");
        }
        return 0;
    }

    /// <summary>
    /// <c>bench model --router ROUTER.json</c>: dense against pruned prefill of the same prompt, alternating,
    /// with the FLOPs ratio beside the speed-up. Prefill only: a one-token decode step is not pruned.
    /// </summary>
    private static int PrunedModel(Arguments a)
    {
        var modelOptions = ModelOptions.Read(a);
        string routerPath = a.Required("router");
        var routing = a.String("routing") ?? "one-pass";
        var options = new PrunedPrefillOptions(a.Int("prompt-tokens", 512), a.Int("reps", 5), a.Int("seed", 1))
        {
            Routing = new RoutingOptions
            {
                Mode = routing switch
                {
                    "one-pass" => RoutingMode.OnePass,
                    "block" => RoutingMode.Block,
                    _ => throw new UsageException($"--routing expects one-pass or block, got '{routing}'"),
                },
            },
        };
        bool json = a.Flag("json");
        a.RejectUnknown();

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

    public static int Kernels(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "json", "quick" });
        bool json = a.Flag("json");
        bool quick = a.Flag("quick");
        a.RejectUnknown();
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
            Console.WriteLine($"  GEMV {g.M}x{g.N}x{g.K} {g.Storage,-4} {g.WeightGBPerSecond,7:F1} GB/s      {g.PercentOfReadBandwidth,5:F1}% of read bandwidth");
        return 0;
    }

    /// <summary>Encode and decode speed of activation packets (the codec alone, no network).</summary>
    public static int Wire(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        int hidden = a.Int("hidden", 2048);
        double seconds = a.Float("seconds", 0.5f);
        bool json = a.Flag("json");
        a.RejectUnknown();
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
    public static async Task<int> Pipeline(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        var modelOptions = ModelOptions.Read(a);
        var cluster = ClusterTarget.Read(a) ?? throw new UsageException("bench pipeline needs --stages N or --cluster HOST:PORT");
        int promptTokens = a.Int("prompt-tokens", 256);
        int reps = a.Int("reps", 5);
        bool json = a.Flag("json");
        a.RejectUnknown();
        if (promptTokens < 1 || reps < 1) throw new UsageException("--prompt-tokens and --reps must be at least 1");

        // The same prompt in both engines; greedy, one generated token: the time is the prefill's.
        double local;
        using (var device = modelOptions.CreateDevice())
        using (var model = modelOptions.LoadModel(device))
        {
            if (promptTokens + 1 > model.Config.MaxSeqLen)
                throw new UsageException($"--prompt-tokens {promptTokens} leaves no room in the model's context of {model.Config.MaxSeqLen}");
            local = ModelBenchmark.Run(model, new ModelBenchmarkOptions(promptTokens, GenTokens: 1, reps)).PrefillTokensPerSecond;
        }
        var random = new Random(1);
        int vocab;
        using (var checkpoint = Compute.Models.Checkpoint.Open(modelOptions.ModelPath)) vocab = checkpoint.Config.VocabSize;
        var prompt = Enumerable.Range(0, promptTokens).Select(_ => random.Next(vocab)).ToArray();

        using var interruption = new Interruption();
        await using var session = await PipelineSession.OpenAsync(cluster, modelOptions, interruption.Token);
        var request = new GenerationRequest(prompt, MaxTokens: 1, StopTokens: []);
        var seconds = new List<double>();
        for (int rep = -1; rep < reps; rep++) // rep -1 warms up every stage
        {
            var clock = Stopwatch.StartNew();
            await session.Coordinator.Generate(request).WaitAsync(interruption.Token);
            if (rep >= 0) seconds.Add(clock.Elapsed.TotalSeconds);
        }
        seconds.Sort();
        double pipeline = promptTokens / seconds[seconds.Count / 2];
        var traffic = await session.TrafficAsync(interruption.Token);
        if (json)
        {
            CommandSupport.WriteJson(new
            {
                Model = modelOptions.ModelPath,
                DeploymentId = session.DeploymentId,
                PromptTokens = promptTokens,
                Reps = reps,
                traffic.Stages,
                LocalPrefillTokensPerSecond = local,
                PipelinePrefillTokensPerSecond = pipeline,
                Ratio = pipeline / local,
                WireBytesPerPrefill = traffic.WireBytes.Select(b => b / (reps + 1)).ToArray(),
            });
            return 0;
        }
        Console.WriteLine($"prefill of {promptTokens} tokens, median of {reps}: one process {local:F1} tokens/s, " +
            $"{traffic.Stages.Length} stages {pipeline:F1} tokens/s ({pipeline / local:P1})");
        return 0;
    }
}
