namespace FtpCluster.Compute.Models;

/// <summary>The one place that knows which shape each tensor role must have under a config.</summary>
public static class CheckpointTensors
{
    public static bool IsGlobal(TensorRole role) =>
        role is TensorRole.TokenEmbedding or TensorRole.FinalNorm or TensorRole.LmHead;

    /// <summary>The shape a tensor with this role must have: [rows] for vectors, [out, in] for matrices.</summary>
    public static long[] ExpectedShape(ModelConfig c, TensorRole role) => role switch
    {
        TensorRole.TokenEmbedding or TensorRole.LmHead => [c.VocabSize, c.Dim],
        TensorRole.AttentionNorm or TensorRole.FfnNorm or TensorRole.FinalNorm => [c.Dim],
        TensorRole.Query => [c.QueryDim, c.Dim],
        TensorRole.Key or TensorRole.Value => [c.KvDim, c.Dim],
        TensorRole.QueryBias => [c.QueryDim],
        TensorRole.KeyBias or TensorRole.ValueBias => [c.KvDim],
        TensorRole.AttentionOutput => [c.Dim, c.QueryDim],
        TensorRole.Gate or TensorRole.Up => [c.HiddenDim, c.Dim],
        TensorRole.Down => [c.Dim, c.HiddenDim],
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    /// <summary>The tensors a block needs, biases included only when the config has them.</summary>
    public static IEnumerable<TensorRole> BlockRoles(ModelConfig c)
    {
        yield return TensorRole.AttentionNorm;
        yield return TensorRole.Query;
        yield return TensorRole.Key;
        yield return TensorRole.Value;
        if (c.AttentionBias)
        {
            yield return TensorRole.QueryBias;
            yield return TensorRole.KeyBias;
            yield return TensorRole.ValueBias;
        }
        yield return TensorRole.AttentionOutput;
        yield return TensorRole.FfnNorm;
        yield return TensorRole.Gate;
        yield return TensorRole.Up;
        yield return TensorRole.Down;
    }

    /// <summary>
    /// Every tensor a model with this config needs, globals first, then each layer's block roles. The
    /// LM head is listed only when it is separate from the embedding.
    /// </summary>
    public static IEnumerable<(TensorRole Role, int Layer)> All(ModelConfig c)
    {
        yield return (TensorRole.TokenEmbedding, -1);
        for (int layer = 0; layer < c.Layers; layer++)
            foreach (var role in BlockRoles(c))
                yield return (role, layer);
        yield return (TensorRole.FinalNorm, -1);
        if (!c.TiedEmbeddings)
            yield return (TensorRole.LmHead, -1);
    }

    /// <summary>The tensor, checked against the config; a missing or misshapen tensor is a <see cref="ModelFormatException"/>.</summary>
    public static WeightTensor Require(ICheckpoint checkpoint, TensorRole role, int layer = -1)
    {
        var tensor = checkpoint.Find(role, layer)
            ?? throw new ModelFormatException(checkpoint.Source, Describe(role, layer), "tensor is missing");
        var expected = ExpectedShape(checkpoint.Config, role);
        if (!tensor.Shape.SequenceEqual(expected))
            throw new ModelFormatException(tensor.FilePath, tensor.Name,
                $"shape {tensor.ShapeText} does not match the config, which needs [{string.Join(", ", expected)}]");
        return tensor;
    }

    private static string Describe(TensorRole role, int layer) =>
        IsGlobal(role) ? role.ToString() : $"layer {layer} {role}";
}
