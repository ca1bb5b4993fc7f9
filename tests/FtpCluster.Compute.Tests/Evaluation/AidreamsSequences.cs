using FtpCluster.Compute.Evaluation;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Tests.Evaluation;

/// <summary>Evaluation sequences for aidreams260K: the golden greedy text and a few sampled ones.</summary>
internal static class AidreamsSequences
{
    public const string ModelFile = "aidreams260K/aidreams260K.bin";

    public static EvalSequence[] Make(TransformerStage model, int sampled = 3)
    {
        var golden = SharedModels.Golden.GetProperty("aidreams260K").GetProperty("greedy_60_steps_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var sequences = new List<EvalSequence> { new(golden, "golden greedy") };
        for (int seed = 0; sequences.Count <= sampled; seed++)
        {
            var ids = Generator.Generate(model, [1], new GenerationOptions
            {
                MaxTokens = 60,
                Sampling = new SamplingOptions { Temperature = 1, Seed = seed },
                StopTokens = new HashSet<int> { 1, 2 },
            }).Ids;
            if (ids.Length >= 24) sequences.Add(new EvalSequence(ids, $"sample {seed}"));
        }
        return [.. sequences];
    }
}
