using System.Text.Json;
using FtpCluster.Client.Cluster;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Client.Commands;

/// <summary>
/// What every command that runs a model is told: --model, --tokenizer, --device, --threads, --dtype
/// (<see cref="ModelOptionGroup"/> reads them from the command line).
/// </summary>
internal sealed record ModelOptions(string ModelPath, string? TokenizerPath, string? Device, int Threads, TensorDType? Storage)
{
    public string DeviceName => Device ?? "cpu";

    private bool DeviceGiven => Device is not null;

    /// <summary>The device, logged to stderr so every run says where it ran.</summary>
    public IComputeDevice CreateDevice(bool profiling = false)
    {
        var device = ComputeDevices.Create(DeviceName, Threads, profiling);
        Console.Error.WriteLine($"device: {device.Description}");
        return device;
    }

    public TransformerStage LoadModel(IComputeDevice device) => TransformerStage.Load(ModelPath, device, storage: Storage);

    /// <summary>The model's configuration alone, for a command whose model runs on a cluster.</summary>
    public ModelConfig ReadConfig()
    {
        using var checkpoint = Checkpoint.Open(ModelPath);
        return checkpoint.Config;
    }

    /// <summary>
    /// --device and --threads configure the silos an embedded cluster starts; a running cluster's silos
    /// have their own, so there they would silently mean nothing.
    /// </summary>
    public void CheckUsableWith(ClusterTarget cluster)
    {
        if (cluster.IsEmbedded) return;
        if (DeviceGiven) throw new UsageException("--device is a silo's own setting: it cannot be chosen with --cluster");
        if (Threads != 0) throw new UsageException("--threads is a silo's own setting: it cannot be chosen with --cluster");
    }

    /// <summary>
    /// --tokenizer, else the tokenizer beside the model: tokenizer.json or tokenizer.model in a
    /// Hugging Face directory; a single tok*.bin next to a llama2.c file. Null when there is none.
    /// </summary>
    public ITokenizer? LoadTokenizer(ModelConfig config) =>
        (TokenizerPath ?? TokenizerLoader.FindBeside(ModelPath)) is { } path ? TokenizerLoader.Load(path, config.VocabSize) : null;
}

/// <summary>What several commands share: token ids from the command line and JSON output.</summary>
internal static class CommandSupport
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>A JSON array of token ids, e.g. "[1, 5, 9]".</summary>
    public static int[] ParseIds(string json, int vocabSize)
    {
        int[]? ids;
        try
        {
            ids = JsonSerializer.Deserialize<int[]>(json);
        }
        catch (JsonException e)
        {
            throw new UsageException($"--ids expects a JSON array of integers such as [1,5,9]: {e.Message}");
        }
        if (ids is null || ids.Length == 0) throw new UsageException("--ids is empty");
        int bad = Array.FindIndex(ids, id => id < 0 || id >= vocabSize);
        if (bad >= 0) throw new UsageException($"--ids[{bad}] = {ids[bad]} is outside the vocabulary [0, {vocabSize})");
        return ids;
    }

    public static void WriteJson<T>(T value) => Console.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>Where a pipeline's stages ran and what crossed each boundary, on stderr beside the output.</summary>
    public static void PrintTraffic(PipelineTraffic traffic)
    {
        for (int i = 0; i < traffic.WireBytes.Length; i++)
            Console.Error.WriteLine($"wire: {traffic.Stages[i].Silo} -> {traffic.Stages[i + 1].Silo}: {traffic.WireBytes[i]} bytes");
    }
}
