using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Evaluation;

/// <summary>What a method did with one sequence.</summary>
/// <param name="Logits">[ids.Length, vocab]: row r predicts the token after position r.</param>
/// <param name="ComputedRows">
/// Per block of the model, the sorted row indices (= positions) the block computed; an empty array is a
/// block that computed nothing. Achieved sparsity and FLOPs are counted from these, never from the target.
/// </param>
public sealed record MethodOutput(float[] Logits, IReadOnlyList<int[]> ComputedRows);

/// <summary>
/// A way of running the model on a sequence that <see cref="Evaluator"/> compares with the dense model:
/// dense itself, ShortGPT-style block removal, and the FTP routers.
/// </summary>
public interface IEvalMethod
{
    /// <summary>The method's name in results: "dense", "shortgpt", "static", "learned", "random", "uniform".</summary>
    string Name { get; }

    /// <summary>
    /// "block" when the method decides block by block as the hidden rows change; "one-pass" when every
    /// block's rows are known before the first row moves (what a pipeline of stages can run). A fixed plan
    /// such as dense or block removal is one-pass.
    /// </summary>
    string Routing { get; }

    /// <summary>The mean fraction of token-blocks the method was asked to skip (0 for dense).</summary>
    double SparsityTarget { get; }

    MethodOutput Run(int[] ids);
}

/// <summary>What a method may need when it is set up: the model and the data to calibrate on.</summary>
public sealed class EvalMethodContext
{
    private readonly Lazy<double[]> _blockInfluence;

    public EvalMethodContext(TransformerStage model, IReadOnlyList<EvalSequence> calibration)
    {
        if (calibration.Count == 0) throw new ArgumentException("calibration needs at least one sequence", nameof(calibration));
        Model = model;
        Calibration = calibration;
        _blockInfluence = new(() => Evaluation.BlockInfluence.Measure(model, calibration.Select(s => s.Ids)));
    }

    public TransformerStage Model { get; }

    /// <summary>Sequences a method may calibrate on: the evaluation data unless separate data was given.</summary>
    public IReadOnlyList<EvalSequence> Calibration { get; }

    /// <summary>ShortGPT's Block Influence of each block on <see cref="Calibration"/>, measured once when first asked for.</summary>
    public double[] BlockInfluence => _blockInfluence.Value;
}

/// <summary>A method by name: how to set it up at a target sparsity.</summary>
/// <param name="TakesSparsity">False for a method that has no sparsity (dense): it is evaluated once, not once per target.</param>
public sealed record EvalMethodEntry(string Name, bool TakesSparsity, Func<EvalMethodContext, double, IEvalMethod> Create);

/// <summary>The methods <c>ftpcluster eval --methods</c> knows; a new method is one entry here.</summary>
public static class EvalMethods
{
    public static IReadOnlyList<EvalMethodEntry> Known { get; } =
    [
        new("dense", TakesSparsity: false, (context, _) => new DenseMethod(context.Model)),
        new("shortgpt", TakesSparsity: true, (context, sparsity) => new ShortGptMethod(context.Model, context.BlockInfluence, sparsity)),
    ];

    public static IReadOnlyList<string> Names => [.. Known.Select(m => m.Name)];

    /// <summary>The entry of that name; an unknown name is an <see cref="ArgumentException"/> listing the known ones.</summary>
    public static EvalMethodEntry Find(string name) =>
        Known.FirstOrDefault(m => m.Name == name)
        ?? throw new ArgumentException($"unknown method '{name}' (known: {string.Join(", ", Names)})", nameof(name));
}
