using System.CommandLine;
using System.Numerics.Tensors;
using FtpCluster.Client.Cli;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;

namespace FtpCluster.Client.Commands;

/// <summary>
/// <c>ftpcluster score</c>: the log-probability of each next token of a sequence (and its logits), in this
/// process or through a pipeline of stages on a cluster (<see cref="ClusterTarget"/>).
/// </summary>
internal static class ScoreCommand
{
    private static readonly Option<string> IdsOption = CliOption.Text("--ids", "JSON_ARRAY", "The sequence as token ids, such as [1,5,9]");

    private static readonly Option<string> TextOption = CliOption.Text("--text", "TEXT", "The sequence as text, encoded with the model's tokenizer (BOS first)");

    private static readonly Option<bool> Logits = CliOption.Flag("--logits", "Adds every position's logit row to the JSON");

    private static readonly Option<bool> Json = CliOption.Flag("--json", "Prints {\"ids\", \"logprobs\", \"perplexity\"} and, on a cluster, the stages and their traffic");

    public static Command Create()
    {
        var command = new Command("score", """
            The log-probability of each next token of a sequence and its perplexity, in this process or through a pipeline of stages (CLUSTER).
              score --model PATH (--ids JSON_ARRAY | --text TEXT) [--logits] [--json] [FTP] [CLUSTER]
            """);
        ModelOptionGroup.AddTo(command);
        foreach (var option in new Option[] { IdsOption, TextOption, Logits, Json }) command.Add(option);
        PruningOptionGroup.AddTo(command);
        ClusterOptionGroup.AddTo(command);
        command.SetAction(Run);
        return command;
    }

    private static int Run(ParseResult parse)
    {
        var modelOptions = ModelOptionGroup.Bind(parse);
        var cluster = ClusterOptionGroup.Bind(parse);
        var pruning = PruningOptionGroup.Bind(parse);
        string? idsJson = parse.GetValue(IdsOption);
        string? text = parse.GetValue(TextOption);
        bool withLogits = parse.GetValue(Logits);
        bool json = parse.GetValue(Json);
        if (idsJson is null == text is null) throw new UsageException("give either --ids JSON_ARRAY or --text TEXT");
        pruning?.CheckUsableWith(cluster);

        if (cluster is not null)
        {
            modelOptions.CheckUsableWith(cluster);
            var config = modelOptions.ReadConfig();
            int[] clusterIds = Ids(modelOptions, config, idsJson, text);
            var (clusterLogits, traffic) = ScoreInClusterAsync(cluster, modelOptions, pruning, clusterIds).GetAwaiter().GetResult();
            return Print(clusterIds, clusterLogits, config.VocabSize, withLogits, json, traffic);
        }

        using var device = modelOptions.CreateDevice();
        using var model = modelOptions.LoadModel(device);
        int[] ids = Ids(modelOptions, model.Config, idsJson, text);
        var logits = pruning is null
            ? Generator.AllLogits(model, ids)
            : pruning.LoadPruner(model, modelOptions.ModelPath).Run([ids], pruning.Routing).Logits;
        return Print(ids, logits, model.Config.VocabSize, withLogits, json, traffic: null);
    }

    private static int[] Ids(ModelOptions modelOptions, ModelConfig config, string? idsJson, string? text)
    {
        if (text is null) return CommandSupport.ParseIds(idsJson!, config.VocabSize);
        var tokenizer = modelOptions.LoadTokenizer(config)
            ?? throw new UsageException($"no tokenizer found beside {modelOptions.ModelPath}: pass --tokenizer PATH, or --ids instead of --text");
        return tokenizer.Encode(text, addBos: true);
    }

    private static async Task<(float[] Logits, PipelineTraffic Traffic)> ScoreInClusterAsync(
        ClusterTarget cluster, ModelOptions modelOptions, PruningOptions? pruning, int[] ids)
    {
        using var interruption = new Interruption();
        await using var session = await PipelineSession.OpenAsync(cluster, modelOptions, pruning, interruption.Token);
        var result = await session.Coordinator.Score(ids).WaitAsync(interruption.Token);
        return (result.LogitValues(), await session.TrafficAsync(interruption.Token));
    }

    /// <param name="logits">[ids.Length, vocab], row i predicting ids[i + 1].</param>
    private static int Print(int[] ids, float[] logits, int vocab, bool withLogits, bool json, PipelineTraffic? traffic)
    {
        // logprobs[i] = log p(ids[i + 1] | ids[..i + 1])
        var logprobs = new double[ids.Length - 1];
        var row = new float[vocab];
        for (int i = 0; i + 1 < ids.Length; i++)
        {
            var logit = logits.AsSpan(i * vocab, vocab);
            float max = TensorPrimitives.Max(logit);
            TensorPrimitives.Subtract(logit, max, row);
            TensorPrimitives.Exp(row, row);
            logprobs[i] = logit[ids[i + 1]] - max - Math.Log(TensorPrimitives.Sum(row));
        }
        double perplexity = logprobs.Length == 0 ? double.NaN : Math.Exp(-logprobs.Average());

        if (json)
        {
            CommandSupport.WriteJson(new
            {
                Ids = ids,
                Logprobs = logprobs,
                Perplexity = logprobs.Length == 0 ? (double?)null : perplexity,
                Logits = withLogits ? Enumerable.Range(0, ids.Length).Select(i => logits.AsSpan(i * vocab, vocab).ToArray()).ToArray() : null,
                traffic?.Deployment,
                traffic?.Stages,
                traffic?.WireBytes,
            });
        }
        else
        {
            for (int i = 0; i < logprobs.Length; i++)
                Console.WriteLine($"{i,5}  next {ids[i + 1],6}  logprob {logprobs[i],10:F4}");
            Console.WriteLine($"perplexity {perplexity:F4} over {logprobs.Length} predictions");
            if (traffic is not null) CommandSupport.PrintTraffic(traffic);
        }
        return 0;
    }
}
