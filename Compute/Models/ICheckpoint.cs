namespace FtpCluster.Compute.Models;

/// <summary>What a tensor is for, independent of how a file format names it.</summary>
public enum TensorRole
{
    TokenEmbedding,
    AttentionNorm,
    Query,
    Key,
    Value,
    QueryBias,
    KeyBias,
    ValueBias,
    AttentionOutput,
    FfnNorm,
    Gate,
    Up,
    Down,
    FinalNorm,
    LmHead,
}

/// <summary>An opened model file or directory: its configuration and a way to find each tensor.</summary>
public interface ICheckpoint : IDisposable
{
    /// <summary>The file or directory it was opened from, for messages.</summary>
    string Source { get; }

    ModelConfig Config { get; }

    /// <summary>
    /// The tensor with this role (in <paramref name="layer"/> for per-layer roles), or null when the
    /// file has none (no biases; no separate LM head when embeddings are tied). Shapes are as stored:
    /// the slice loader checks them against <see cref="Config"/>.
    /// </summary>
    WeightTensor? Find(TensorRole role, int layer = -1);
}
