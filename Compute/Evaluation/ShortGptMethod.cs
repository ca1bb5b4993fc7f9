using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// ShortGPT-style block removal: the round(target · layers) blocks of lowest Block Influence compute no
/// token at all; the rest compute every token. Whole blocks go, so the achieved sparsity moves in steps
/// of 1 / layers (2 of 5 blocks removed is 40%, whatever the target was).
/// </summary>
public sealed class ShortGptMethod : IEvalMethod
{
    private readonly TransformerStage _model;

    /// <param name="blockInfluence">BI per block, from <see cref="BlockInfluence.Measure"/> on calibration data.</param>
    public ShortGptMethod(TransformerStage model, IReadOnlyList<double> blockInfluence, double sparsityTarget)
    {
        int layers = model.Config.Layers;
        if (blockInfluence.Count != layers)
            throw new ArgumentException($"{blockInfluence.Count} Block Influence values for {layers} blocks", nameof(blockInfluence));
        if (!(sparsityTarget >= 0 && sparsityTarget < 1))
            throw new ArgumentOutOfRangeException(nameof(sparsityTarget), sparsityTarget, "sparsity must be in [0, 1)");
        _model = model;
        SparsityTarget = sparsityTarget;
        int removed = (int)Math.Round(sparsityTarget * layers, MidpointRounding.AwayFromZero);
        // Lowest influence first; equal influence removes the earlier block first, so the choice is stable.
        RemovedBlocks = [.. Enumerable.Range(0, layers).OrderBy(b => blockInfluence[b]).ThenBy(b => b).Take(removed).Order()];
    }

    public string Name => "shortgpt";
    public string Routing => "one-pass";
    public IReadOnlyList<LayerRange>? Stages => null;
    public double SparsityTarget { get; }

    /// <summary>The blocks removed, in layer order.</summary>
    public IReadOnlyList<int> RemovedBlocks { get; }

    public MethodOutput Run(int[] ids)
    {
        var all = Enumerable.Range(0, ids.Length).ToArray();
        var computed = new int[_model.Config.Layers][];
        for (int b = 0; b < computed.Length; b++) computed[b] = RemovedBlocks.Contains(b) ? [] : all;
        return new(Generator.AllLogits(_model, ids, computed), computed);
    }
}
