using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Hub;

/// <summary>
/// The files of a Hugging Face repository a model needs: config.json, the weights (model.safetensors, or
/// model.safetensors.index.json and every shard it names) and whichever tokenizer files the repository has.
/// </summary>
public static class HubModelFiles
{
    /// <summary>Files fetched when the repository has them; a model runs without them (given token ids).</summary>
    public static readonly IReadOnlyList<string> Optional =
        ["tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "generation_config.json"];

    /// <summary>How a message names the weights of a snapshot that has neither weights file yet.</summary>
    public const string WeightsDescription =
        HuggingFaceCheckpoint.WeightsFileName + " (or " + HuggingFaceCheckpoint.IndexFileName + " and the shards it names)";

    /// <summary>
    /// The files a model needs that <paramref name="snapshot"/> lacks: config.json, the weights file, or the shards its
    /// index names; empty when the snapshot is complete. For a named file (<paramref name="file"/>) that file alone.
    /// </summary>
    public static IReadOnlyList<string> Missing(string snapshot, string? file = null)
    {
        bool Has(string name) => File.Exists(Path.Combine(snapshot, name));
        if (file is not null)
            return Has(file) ? [] : [file];
        var missing = new List<string>();
        if (!Has(HuggingFaceCheckpoint.ConfigFileName))
            missing.Add(HuggingFaceCheckpoint.ConfigFileName);
        if (Has(HuggingFaceCheckpoint.IndexFileName))
            missing.AddRange(Shards(Path.Combine(snapshot, HuggingFaceCheckpoint.IndexFileName)).Where(shard => !Has(shard)));
        else if (!Has(HuggingFaceCheckpoint.WeightsFileName))
            missing.Add(WeightsDescription);
        return missing;
    }

    /// <summary>The shard files a model.safetensors.index.json names, each once, in the order first named.</summary>
    /// <exception cref="ModelFormatException">The index is not JSON with a weight_map of file names.</exception>
    public static IReadOnlyList<string> Shards(string indexPath)
    {
        using var index = ModelJson.ReadFile(indexPath, InputFileLimits.SafetensorsIndexBytes, HuggingFaceCheckpoint.IndexFileName);
        var weightMap = index.RootElement.AsObject(indexPath, HuggingFaceCheckpoint.IndexFileName)
            .Required(indexPath, "weight_map").AsObject(indexPath, "weight_map");
        var shards = new List<string>();
        foreach (var entry in weightMap.EnumerateObject())
        {
            string shard = entry.Value.AsString(indexPath, "weight_map", entry.Name);
            // A name with a folder in it could reach outside the snapshot; the checkpoint reader refuses it too.
            if (shard.Length == 0 || Path.GetFileName(shard) != shard || shard is "." or "..")
                throw new ModelFormatException(indexPath, entry.Name, $"shard '{shard}' is not a file name in the checkpoint directory");
            if (!shards.Contains(shard))
                shards.Add(shard);
        }
        return shards;
    }
}
