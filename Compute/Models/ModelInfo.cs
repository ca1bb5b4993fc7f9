namespace FtpCluster.Compute.Models;

/// <summary>
/// What a checkpoint holds, for people and for deployment planning; serialises with System.Text.Json.
/// Sizes are as stored (in the checkpoint's dtypes), counting a tied embedding once.
/// </summary>
/// <param name="Architecture">"llama2c" or the Hugging Face architecture class name.</param>
/// <param name="DTypes">The distinct storage types of the tensors, e.g. ["BF16"] or ["F32", "F16"].</param>
/// <param name="BytesPerLayer">The largest transformer block's bytes (the blocks of one checkpoint normally all match).</param>
/// <param name="TotalBytes">All tensors the model uses, blocks and embedding, final norm and LM head.</param>
public sealed record ModelInfo(
    string Source,
    string Architecture,
    int Layers,
    int Dim,
    int Heads,
    int KvHeads,
    int HeadDim,
    int HiddenDim,
    int VocabSize,
    int MaxSeqLen,
    float RopeTheta,
    Llama3RopeScaling? RopeScaling,
    float[]? RopeFrequencyFactors,
    float RmsNormEps,
    bool TiedEmbeddings,
    bool AttentionBias,
    IReadOnlyList<string> DTypes,
    long ParameterCount,
    long BytesPerLayer,
    long TotalBytes)
{
    public static ModelInfo Describe(ICheckpoint checkpoint)
    {
        var c = checkpoint.Config;
        var tensors = CheckpointTensors.All(c)
            .Select(t => (t.Layer, Tensor: CheckpointTensors.Require(checkpoint, t.Role, t.Layer)))
            .ToList();
        long bytesPerLayer = tensors.Where(t => t.Layer >= 0)
            .GroupBy(t => t.Layer)
            .Select(layer => layer.Sum(t => t.Tensor.ByteLength))
            .DefaultIfEmpty(0)
            .Max();
        return new ModelInfo(
            checkpoint.Source,
            c.Architecture,
            c.Layers,
            c.Dim,
            c.Heads,
            c.KvHeads,
            c.HeadDim,
            c.HiddenDim,
            c.VocabSize,
            c.MaxSeqLen,
            c.RopeTheta,
            c.RopeScaling,
            c.RopeFrequencyFactors,
            c.RmsNormEps,
            c.TiedEmbeddings,
            c.AttentionBias,
            [.. tensors.Select(t => t.Tensor.DType).Distinct().Order().Select(d => d.SafetensorsName())],
            tensors.Sum(t => t.Tensor.ElementCount),
            bytesPerLayer,
            tensors.Sum(t => t.Tensor.ByteLength));
    }
}
