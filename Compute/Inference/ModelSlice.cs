using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Inference;

/// <summary>Which part of a model a stage holds: blocks [FirstLayer, EndLayer), and the ends when asked.</summary>
public sealed record SliceSpec(int FirstLayer, int EndLayer, bool Embedding, bool Head)
{
    public static SliceSpec Whole(ModelConfig c) => new(0, c.Layers, true, true);

    public int LayerCount => EndLayer - FirstLayer;
}

/// <summary>The weights of one transformer block, prepared for a device: matrices and vectors alike live in its memory.</summary>
public sealed class BlockWeights : IDisposable
{
    public required int Layer { get; init; }
    public required DeviceBuffer<float> AttentionNorm { get; init; }
    public required IDeviceMatrix Query { get; init; }
    public required IDeviceMatrix Key { get; init; }
    public required IDeviceMatrix Value { get; init; }
    public DeviceBuffer<float>? QueryBias { get; init; }
    public DeviceBuffer<float>? KeyBias { get; init; }
    public DeviceBuffer<float>? ValueBias { get; init; }
    public required IDeviceMatrix AttentionOutput { get; init; }
    public required DeviceBuffer<float> FfnNorm { get; init; }
    public required IDeviceMatrix Gate { get; init; }
    public required IDeviceMatrix Up { get; init; }
    public required IDeviceMatrix Down { get; init; }

    public long ResidentBytes =>
        Query.ResidentBytes + Key.ResidentBytes + Value.ResidentBytes + AttentionOutput.ResidentBytes
        + Gate.ResidentBytes + Up.ResidentBytes + Down.ResidentBytes
        + AttentionNorm.Bytes + FfnNorm.Bytes + (QueryBias?.Bytes ?? 0) + (KeyBias?.Bytes ?? 0) + (ValueBias?.Bytes ?? 0);

    public void Dispose()
    {
        foreach (var m in new[] { Query, Key, Value, AttentionOutput, Gate, Up, Down }) m.Dispose();
        foreach (var v in new[] { AttentionNorm, FfnNorm, QueryBias, KeyBias, ValueBias }) v?.Dispose();
    }
}

/// <summary>The token embedding, kept in the dtype it was stored in; rows are converted on lookup.</summary>
public sealed class EmbeddingTable
{
    private readonly WeightTensor _source;
    private readonly byte[] _data;

    public EmbeddingTable(WeightTensor tensor)
    {
        _source = tensor;
        _data = tensor.Bytes.ToArray();
        Rows = tensor.Rows;
        Dim = tensor.Cols;
        DType = tensor.DType;
    }

    public int Rows { get; }
    public int Dim { get; }
    public TensorDType DType { get; }
    public long ResidentBytes => _data.LongLength;

    public void CopyRow(int token, Span<float> destination)
    {
        if ((uint)token >= (uint)Rows)
            throw new ArgumentOutOfRangeException(nameof(token), $"token id {token} is outside the vocabulary [0, {Rows})");
        int rowBytes = (int)DType.ByteCount(Dim);
        Kernels.Cpu.WeightConvert.ToSingle(_data.AsSpan(token * rowBytes, rowBytes), DType, destination.Slice(0, Dim));
    }

    public override string ToString() => $"{_source.Name} [{Rows}, {Dim}] {DType}";
}

/// <summary>
/// The weights one stage holds: blocks [FirstLayer, EndLayer) and, when asked, the embedding and the
/// final norm + LM head. Every tensor is checked before any is copied, so a bad file loads nothing.
/// </summary>
public sealed class ModelSlice : IDisposable
{
    private ModelSlice(ModelConfig config, SliceSpec spec, BlockWeights[] blocks, EmbeddingTable? embedding,
        DeviceBuffer<float>? finalNorm, IDeviceMatrix? lmHead)
    {
        Config = config;
        Spec = spec;
        Blocks = blocks;
        Embedding = embedding;
        FinalNorm = finalNorm;
        LmHead = lmHead;
    }

    public ModelConfig Config { get; }
    public SliceSpec Spec { get; }
    public IReadOnlyList<BlockWeights> Blocks { get; }
    public EmbeddingTable? Embedding { get; }
    public DeviceBuffer<float>? FinalNorm { get; }
    public IDeviceMatrix? LmHead { get; }

    /// <summary>Bytes of weights this slice keeps resident (copied out of the mapped file).</summary>
    public long ResidentBytes =>
        Blocks.Sum(b => b.ResidentBytes) + (Embedding?.ResidentBytes ?? 0)
        + (FinalNorm?.Bytes ?? 0) + (LmHead?.ResidentBytes ?? 0);

    /// <param name="storage">
    /// Storage type for the matrices; null keeps each tensor's own dtype. A quantized type is quantized at load, with
    /// llama.cpp's fall-back for a matrix whose rows are not whole blocks of it (<see cref="TensorDTypeExtensions.StorageForRows"/>).
    /// </param>
    public static ModelSlice Load(ICheckpoint checkpoint, SliceSpec spec, IComputeDevice device, TensorDType? storage = null)
    {
        var c = checkpoint.Config;
        if (spec.FirstLayer < 0 || spec.EndLayer > c.Layers || spec.FirstLayer >= spec.EndLayer && !(spec.Embedding || spec.Head))
            throw new ArgumentOutOfRangeException(nameof(spec), $"layers [{spec.FirstLayer}, {spec.EndLayer}) are not a slice of a {c.Layers}-layer model");

        // Resolve and check every tensor before copying any.
        var blockTensors = new Dictionary<TensorRole, WeightTensor>[spec.LayerCount];
        for (int l = spec.FirstLayer; l < spec.EndLayer; l++)
            blockTensors[l - spec.FirstLayer] = CheckpointTensors.BlockRoles(c)
                .ToDictionary(role => role, role => CheckpointTensors.Require(checkpoint, role, l));
        var embedding = spec.Embedding ? CheckpointTensors.Require(checkpoint, TensorRole.TokenEmbedding) : null;
        var finalNorm = spec.Head ? CheckpointTensors.Require(checkpoint, TensorRole.FinalNorm) : null;
        var lmHead = spec.Head ? CheckpointTensors.Require(checkpoint, TensorRole.LmHead) : null;

        var blocks = new List<BlockWeights>();
        try
        {
            for (int i = 0; i < blockTensors.Length; i++)
                blocks.Add(PrepareBlock(spec.FirstLayer + i, blockTensors[i], device, storage));
            return new ModelSlice(c, spec, blocks.ToArray(),
                embedding is null ? null : new EmbeddingTable(embedding),
                finalNorm is null ? null : device.UploadNew<float>(finalNorm.ToFloatArray()),
                lmHead is null ? null : device.PrepareMatrix(lmHead, StorageOf(lmHead, storage)));
        }
        catch
        {
            foreach (var b in blocks) b.Dispose();
            throw;
        }
    }

    private static BlockWeights PrepareBlock(int layer, Dictionary<TensorRole, WeightTensor> t, IComputeDevice device, TensorDType? storage)
    {
        IDeviceMatrix M(TensorRole role) => device.PrepareMatrix(t[role], StorageOf(t[role], storage));
        DeviceBuffer<float>? V(TensorRole role) => t.TryGetValue(role, out var v) ? device.UploadNew<float>(v.ToFloatArray()) : null;
        return new BlockWeights
        {
            Layer = layer,
            AttentionNorm = V(TensorRole.AttentionNorm)!,
            Query = M(TensorRole.Query),
            Key = M(TensorRole.Key),
            Value = M(TensorRole.Value),
            QueryBias = V(TensorRole.QueryBias),
            KeyBias = V(TensorRole.KeyBias),
            ValueBias = V(TensorRole.ValueBias),
            AttentionOutput = M(TensorRole.AttentionOutput),
            FfnNorm = V(TensorRole.FfnNorm)!,
            Gate = M(TensorRole.Gate),
            Up = M(TensorRole.Up),
            Down = M(TensorRole.Down),
        };
    }

    private static TensorDType? StorageOf(WeightTensor matrix, TensorDType? storage) => storage?.StorageForRows(matrix.Cols);

    public void Dispose()
    {
        foreach (var b in Blocks) b.Dispose();
        FinalNorm?.Dispose();
        LmHead?.Dispose();
    }
}
