using System.Text.Json;
using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Tokenizers;

namespace FtpCluster.Client.Commands;

/// <summary>What several commands share: the device, the model, the tokenizer, JSON output.</summary>
internal static class CommandSupport
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    private static readonly string[] HuggingFaceTokenizerFiles = ["tokenizer.json", "tokenizer.model"];

    /// <summary>The device named by --device (default cpu), logged to stderr so every run says where it ran.</summary>
    public static IComputeDevice Device(Arguments a)
    {
        var device = ComputeDevices.Create(a.String("device") ?? "cpu", a.Int("threads", 0));
        Console.Error.WriteLine($"device: {device.Description}");
        return device;
    }

    public static TensorDType? Storage(Arguments a) =>
        a.String("dtype") is { } s ? Parse(() => TensorDTypeExtensions.Parse(s)) : null;

    public static TransformerStage LoadModel(string path, IComputeDevice device, TensorDType? storage) =>
        TransformerStage.Load(path, device, storage: storage);

    /// <summary>
    /// --tokenizer, else the tokenizer beside the model: tokenizer.json or tokenizer.model in a
    /// Hugging Face directory; tokenizer.bin or a single tok*.bin next to a llama2.c file.
    /// </summary>
    public static ITokenizer? Tokenizer(Arguments a, string modelPath, ModelConfig config)
    {
        string? path = a.String("tokenizer");
        if (path is null)
        {
            if (Directory.Exists(modelPath))
            {
                path = HuggingFaceTokenizerFiles.Select(f => Path.Combine(modelPath, f)).FirstOrDefault(File.Exists);
            }
            else
            {
                string dir = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
                var candidates = Directory.GetFiles(dir, "tok*.bin").Where(f => Path.GetFullPath(f) != Path.GetFullPath(modelPath)).ToArray();
                path = candidates.Length == 1 ? candidates[0] : null;
            }
        }
        return path is null ? null : TokenizerLoader.Load(path, config.VocabSize);
    }

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

    private static T Parse<T>(Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }
}
