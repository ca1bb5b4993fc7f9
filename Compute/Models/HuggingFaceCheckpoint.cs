namespace FtpCluster.Compute.Models;

/// <summary>A Hugging Face model directory: config.json and model.safetensors (or a sharded index).</summary>
public sealed class HuggingFaceCheckpoint : ICheckpoint
{
    private HuggingFaceCheckpoint(string source, ModelConfig config)
    {
        Source = source;
        Config = config;
    }

    public string Source { get; }
    public ModelConfig Config { get; }

    public static HuggingFaceCheckpoint Open(string directory) =>
        throw new ModelFormatException(directory, null, "Hugging Face checkpoints are not readable yet");

    public WeightTensor? Find(TensorRole role, int layer = -1) => null;

    public void Dispose()
    {
    }
}
