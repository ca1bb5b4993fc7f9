using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Evaluation;

/// <summary>The unpruned model: every block computes every token. The reference every ratio is taken against.</summary>
public sealed class DenseMethod(TransformerStage model) : IEvalMethod
{
    public string Name => "dense";
    public string Routing => "one-pass";
    public IReadOnlyList<LayerRange>? Stages => null;
    public double SparsityTarget => 0;

    public MethodOutput Run(int[] ids)
    {
        var all = Enumerable.Range(0, ids.Length).ToArray();
        return new(Generator.AllLogits(model, ids), [.. Enumerable.Repeat(all, model.Config.Layers)]);
    }
}
