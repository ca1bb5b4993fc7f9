using System.Numerics.Tensors;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Client.Commands;

/// <summary><c>ftpcluster score</c>: the log-probability of each next token of a sequence (and its logits).</summary>
internal static class ScoreCommand
{
    public static int Run(string[] args)
    {
        var a = new Arguments(args, new HashSet<string> { "json", "logits" });
        var modelOptions = ModelOptions.Read(a);
        string? idsJson = a.String("ids");
        string? text = a.String("text");
        bool withLogits = a.Flag("logits");
        bool json = a.Flag("json");
        a.RejectUnknown();
        if (idsJson is null == text is null) throw new UsageException("give either --ids JSON_ARRAY or --text TEXT");

        using var device = modelOptions.CreateDevice();
        using var model = modelOptions.LoadModel(device);
        int vocab = model.Config.VocabSize;
        int[] ids;
        if (text is not null)
        {
            var tokenizer = modelOptions.LoadTokenizer(model.Config)
                ?? throw new UsageException($"no tokenizer found beside {modelOptions.ModelPath}: pass --tokenizer PATH, or --ids instead of --text");
            ids = tokenizer.Encode(text, addBos: true);
        }
        else
        {
            ids = CommandSupport.ParseIds(idsJson!, vocab);
        }

        var logits = Generator.AllLogits(model, ids);
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
            });
        }
        else
        {
            for (int i = 0; i < logprobs.Length; i++)
                Console.WriteLine($"{i,5}  next {ids[i + 1],6}  logprob {logprobs[i],10:F4}");
            Console.WriteLine($"perplexity {perplexity:F4} over {logprobs.Length} predictions");
        }
        return 0;
    }
}
