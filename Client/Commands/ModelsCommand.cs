using FtpCluster.Compute.Models;

namespace FtpCluster.Client.Commands;

/// <summary><c>ftpcluster models synth|info</c>: make random-weight checkpoints, describe any checkpoint.</summary>
internal static class ModelsCommand
{
    public static int Synth(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "tied", "untied" });
        string output = a.Required("out");
        SyntheticModelOptions options;
        try
        {
            options = a.String("preset") is { } preset ? SyntheticModelOptions.Preset(preset) : new SyntheticModelOptions();
            options = options with
            {
                Architecture = a.String("arch") ?? options.Architecture,
                Layers = a.Int("layers", options.Layers),
                Dim = a.Int("dim", options.Dim),
                Heads = a.Int("heads", options.Heads),
                KvHeads = a.Int("kv-heads", options.KvHeads),
                HiddenDim = a.Int("hidden", options.HiddenDim),
                VocabSize = a.Int("vocab", options.VocabSize),
                HeadDim = a.Has("head-dim") ? a.Int("head-dim", 0) : options.HeadDim,
                RopeTheta = a.Float("rope-theta", options.RopeTheta),
                MaxPositions = a.Int("max-positions", options.MaxPositions),
                DType = a.String("dtype") is { } d ? TensorDTypeExtensions.Parse(d) : options.DType,
                Seed = (ulong)a.Int("seed", (int)options.Seed),
                TiedEmbeddings = a.Flag("tied") || !a.Flag("untied") && options.TiedEmbeddings,
                MaxShardBytes = a.Has("shard-mb") ? a.Int("shard-mb", 0) * (1L << 20) : options.MaxShardBytes,
            };
            a.RejectUnknown();
            options.ToConfig();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        var config = ModelSynthesizer.Write(options, output);
        Console.WriteLine($"wrote {output}: {config.Architecture}, {config.Layers} layers, dim {config.Dim}, " +
            $"{config.ParameterCount:N0} parameters, {options.DType}");
        return 0;
    }

    public static int Info(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith("--", StringComparison.Ordinal))
            throw new UsageException("usage: ftpcluster models info PATH [--json]");
        var a = new Arguments(args[1..], new HashSet<string> { "json" });
        bool json = a.Flag("json");
        a.RejectUnknown();
        using var checkpoint = Checkpoint.Open(args[0]);
        var info = ModelInfo.Describe(checkpoint);
        if (json)
        {
            CommandSupport.WriteJson(info);
            return 0;
        }
        Console.WriteLine($"{info.Source}");
        Console.WriteLine($"  architecture   {info.Architecture}");
        Console.WriteLine($"  layers         {info.Layers}");
        Console.WriteLine($"  dim            {info.Dim} (hidden {info.HiddenDim})");
        Console.WriteLine($"  heads          {info.Heads} (kv heads {info.KvHeads}, head dim {info.HeadDim})");
        Console.WriteLine($"  vocab          {info.VocabSize}{(info.TiedEmbeddings ? ", tied embeddings" : "")}");
        Console.WriteLine($"  context        {info.MaxSeqLen}");
        Console.WriteLine($"  rope theta     {info.RopeTheta}{(info.RopeScaling is { } s ? $", llama3 scaling x{s.Factor}" : "")}");
        Console.WriteLine($"  dtypes         {string.Join(", ", info.DTypes)}");
        Console.WriteLine($"  parameters     {info.ParameterCount:N0}");
        Console.WriteLine($"  bytes/layer    {info.BytesPerLayer:N0}");
        Console.WriteLine($"  total bytes    {info.TotalBytes:N0}");
        return 0;
    }
}
