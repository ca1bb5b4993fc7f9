using FtpCluster.Compute.Benchmarks;
using FtpCluster.Compute.Inference;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Client.Commands;

/// <summary><c>ftpcluster bench kernels|model</c>: measured speed, for docs/benchmarks.md.</summary>
internal static class BenchCommand
{
    public static int Model(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
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
}
