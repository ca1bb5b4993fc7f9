using FtpCluster.Compute.Benchmarks;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Client.Commands;

/// <summary><c>ftpcluster bench kernels|model</c>: measured speed, for docs/benchmarks.md.</summary>
internal static class BenchCommand
{
    public static int Model(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "json" });
        string modelPath = a.Required("model");
        var options = new ModelBenchmarkOptions(a.Int("prompt-tokens", 128), a.Int("gen-tokens", 64), a.Int("reps", 5), a.Int("seed", 1));
        bool json = a.Flag("json");
        var storage = CommandSupport.Storage(a);
        a.Has("device");
        a.Has("threads");
        a.RejectUnknown();

        using var device = CommandSupport.Device(a);
        using var model = CommandSupport.LoadModel(modelPath, device, storage);
        var result = ModelBenchmark.Run(model, options);
        if (json)
        {
            CommandSupport.WriteJson(new
            {
                Model = modelPath,
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
            Console.WriteLine($"{modelPath} on {device.Description}");
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
            CommandSupport.WriteJson(result);
        else
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(result, CommandSupport.IndentedJson));
        return 0;
    }
}
