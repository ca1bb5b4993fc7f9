using System.Text.Json;

namespace FtpCluster.Compute.Models;

/// <summary>
/// Writes a random-weight Hugging Face checkpoint of any shape: config.json plus model.safetensors, or
/// shards and model.safetensors.index.json. Deterministic for a seed; streamed, so a multi-gigabyte
/// model never sits in memory.
/// </summary>
public static class ModelSynthesizer
{
    private const int ChunkValues = 1 << 16;

    /// <summary>Writes the checkpoint into <paramref name="directory"/> (created when absent) and returns its config.</summary>
    public static ModelConfig Write(SyntheticModelOptions options, string directory)
    {
        var config = options.ToConfig();
        Directory.CreateDirectory(directory);
        var tensors = CheckpointTensors.All(config)
            .Select(t => new SyntheticTensor(HuggingFaceCheckpoint.TensorName(t.Role, t.Layer), t.Role, CheckpointTensors.ExpectedShape(config, t.Role)))
            .ToList();

        string indexPath = Path.Combine(directory, HuggingFaceCheckpoint.IndexFileName);
        string singlePath = Path.Combine(directory, HuggingFaceCheckpoint.WeightsFileName);
        var shards = SplitIntoShards(tensors, options.MaxShardBytes, options.DType);
        // A weights file of the other layout left from an earlier run would be read instead of, or
        // beside, the new one (the reader prefers the index).
        File.Delete(shards.Count == 1 ? indexPath : singlePath);
        if (shards.Count == 1)
        {
            WriteShard(singlePath, shards[0], options);
        }
        else
        {
            var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < shards.Count; i++)
            {
                string shardName = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                WriteShard(Path.Combine(directory, shardName), shards[i], options);
                foreach (var tensor in shards[i])
                    weightMap[tensor.Name] = shardName;
            }
            WriteIndex(indexPath, weightMap, tensors.Sum(t => t.Bytes(options.DType)));
        }
        HuggingFaceConfig.Write(Path.Combine(directory, HuggingFaceCheckpoint.ConfigFileName), config, options.DType);
        return config;
    }

    /// <summary>
    /// Writes the same model as <see cref="Write"/> would, with the same values, as one GGUF file (see
    /// <see cref="GgufModelWriter"/>) and returns its config as written (a Hugging Face config; the file
    /// reads back with llama's adjacent-pair RoPE layout). Llama 3 RoPE scaling cannot be written.
    /// </summary>
    public static ModelConfig WriteGguf(SyntheticModelOptions options, string path)
    {
        var config = options.ToConfig();
        GgufModelWriter.Write(path, config, options.DType, $"synthetic {options.Architecture} seed {options.Seed}", (role, layer) =>
            new SyntheticTensorValues(options.Seed, HuggingFaceCheckpoint.TensorName(role, layer), role, CheckpointTensors.ExpectedShape(config, role)).Fill);
        return config;
    }

    private sealed record SyntheticTensor(string Name, TensorRole Role, long[] Shape)
    {
        public long Count => Shape.Aggregate(1L, (a, b) => a * b);
        public long Bytes(TensorDType dtype) => Count * dtype.Size();
    }

    /// <summary>Consecutive tensors, packed greedily so no shard's data exceeds the limit unless one tensor alone does.</summary>
    private static List<List<SyntheticTensor>> SplitIntoShards(List<SyntheticTensor> tensors, long? maxShardBytes, TensorDType dtype)
    {
        if (maxShardBytes is not { } limit)
            return [tensors];
        var shards = new List<List<SyntheticTensor>>();
        var current = new List<SyntheticTensor>();
        long currentBytes = 0;
        foreach (var tensor in tensors)
        {
            if (current.Count > 0 && currentBytes + tensor.Bytes(dtype) > limit)
            {
                shards.Add(current);
                current = [];
                currentBytes = 0;
            }
            current.Add(tensor);
            currentBytes += tensor.Bytes(dtype);
        }
        shards.Add(current);
        return shards;
    }

    private static void WriteShard(string path, List<SyntheticTensor> tensors, SyntheticModelOptions options)
    {
        using var writer = SafetensorsWriter.Create(path, options.DType, tensors.Select(t => (t.Name, t.Shape)).ToList());
        var chunk = new float[ChunkValues];
        foreach (var tensor in tensors)
        {
            var values = new SyntheticTensorValues(options.Seed, tensor.Name, tensor.Role, tensor.Shape);
            for (long done = 0; done < tensor.Count; done += ChunkValues)
            {
                var span = chunk.AsSpan(0, (int)Math.Min(ChunkValues, tensor.Count - done));
                values.Fill(span);
                writer.Write(span);
            }
        }
        writer.Complete();
    }

    private static void WriteIndex(string path, SortedDictionary<string, string> weightMap, long totalBytes)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteStartObject("metadata");
        json.WriteNumber("total_size", totalBytes);
        json.WriteEndObject();
        json.WriteStartObject("weight_map");
        foreach (var (name, shard) in weightMap)
            json.WriteString(name, shard);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
