namespace FtpCluster.Compute.Models;

/// <summary>
/// A Hugging Face model directory: config.json and model.safetensors, or shards listed by
/// model.safetensors.index.json. Opening reads every header and checks every tensor the config needs,
/// so a checkpoint that opens is complete; tensor data stays on disk until it is touched.
/// </summary>
public sealed class HuggingFaceCheckpoint : ICheckpoint
{
    public const string ConfigFileName = "config.json";
    public const string WeightsFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, WeightTensor> _tensors;

    private HuggingFaceCheckpoint(string source, ModelConfig config, List<SafetensorsFile> files, Dictionary<string, WeightTensor> tensors)
    {
        Source = source;
        Config = config;
        _files = files;
        _tensors = tensors;
    }

    public string Source { get; }
    public ModelConfig Config { get; }

    /// <summary>Every tensor of the weight files by name, including any this engine does not use.</summary>
    public IReadOnlyDictionary<string, WeightTensor> Tensors => _tensors;

    public static HuggingFaceCheckpoint Open(string directory)
    {
        if (!Directory.Exists(directory))
            throw new ModelFormatException(directory, null, "directory not found");
        var config = HuggingFaceConfig.Read(System.IO.Path.Combine(directory, ConfigFileName));
        var files = new List<SafetensorsFile>();
        try
        {
            var (tensors, weightsSource) = OpenWeights(directory, files);
            var checkpoint = new HuggingFaceCheckpoint(directory, config, files, tensors);
            checkpoint.CheckTensors(weightsSource);
            return checkpoint;
        }
        catch
        {
            foreach (var file in files)
                file.Dispose();
            throw;
        }
    }

    /// <summary>The name Hugging Face gives the tensor with this role.</summary>
    public static string TensorName(TensorRole role, int layer = -1)
    {
        string block = $"model.layers.{layer}.";
        return role switch
        {
            TensorRole.TokenEmbedding => "model.embed_tokens.weight",
            TensorRole.FinalNorm => "model.norm.weight",
            TensorRole.LmHead => "lm_head.weight",
            TensorRole.AttentionNorm => block + "input_layernorm.weight",
            TensorRole.Query => block + "self_attn.q_proj.weight",
            TensorRole.Key => block + "self_attn.k_proj.weight",
            TensorRole.Value => block + "self_attn.v_proj.weight",
            TensorRole.QueryBias => block + "self_attn.q_proj.bias",
            TensorRole.KeyBias => block + "self_attn.k_proj.bias",
            TensorRole.ValueBias => block + "self_attn.v_proj.bias",
            TensorRole.AttentionOutput => block + "self_attn.o_proj.weight",
            TensorRole.FfnNorm => block + "post_attention_layernorm.weight",
            TensorRole.Gate => block + "mlp.gate_proj.weight",
            TensorRole.Up => block + "mlp.up_proj.weight",
            TensorRole.Down => block + "mlp.down_proj.weight",
            _ => throw new ArgumentOutOfRangeException(nameof(role)),
        };
    }

    public WeightTensor? Find(TensorRole role, int layer = -1)
    {
        if (role == TensorRole.LmHead && Config.TiedEmbeddings)
            role = TensorRole.TokenEmbedding;
        bool global = CheckpointTensors.IsGlobal(role);
        if (!global && (layer < 0 || layer >= Config.Layers))
            return null;
        return _tensors.GetValueOrDefault(TensorName(role, global ? -1 : layer));
    }

    /// <summary>
    /// Opens the weight files (added to <paramref name="files"/> as they open, for the caller to dispose on
    /// failure); returns every tensor by name and the file that lists them, for messages about missing ones.
    /// </summary>
    private static (Dictionary<string, WeightTensor>, string) OpenWeights(string directory, List<SafetensorsFile> files)
    {
        string indexPath = System.IO.Path.Combine(directory, IndexFileName);
        string singlePath = System.IO.Path.Combine(directory, WeightsFileName);
        if (File.Exists(indexPath))
            return (OpenShards(directory, indexPath, files), indexPath);
        if (!File.Exists(singlePath))
            throw new ModelFormatException(directory, null, $"neither {WeightsFileName} nor {IndexFileName} is present");
        var file = SafetensorsFile.Open(singlePath);
        files.Add(file);
        return (new Dictionary<string, WeightTensor>(file.Tensors), singlePath);
    }

    private static Dictionary<string, WeightTensor> OpenShards(string directory, string indexPath, List<SafetensorsFile> files)
    {
        using var index = ModelJson.ReadFile(indexPath, InputFileLimits.SafetensorsIndexBytes, IndexFileName);
        var weightMap = index.RootElement.AsObject(indexPath, IndexFileName)
            .Required(indexPath, "weight_map").AsObject(indexPath, "weight_map");
        var shards = new Dictionary<string, SafetensorsFile>();
        var tensors = new Dictionary<string, WeightTensor>();
        foreach (var entry in weightMap.EnumerateObject())
        {
            string shardName = entry.Value.AsString(indexPath, "weight_map", entry.Name);
            if (shardName.Length == 0 || System.IO.Path.GetFileName(shardName) != shardName)
                throw new ModelFormatException(indexPath, entry.Name, $"shard '{shardName}' is not a file name in the checkpoint directory");
            if (!shards.TryGetValue(shardName, out var shard))
            {
                string shardPath = System.IO.Path.Combine(directory, shardName);
                if (!File.Exists(shardPath))
                    throw new ModelFormatException(shardPath, null, $"shard file not found ({IndexFileName} lists it for tensor '{entry.Name}')");
                shard = SafetensorsFile.Open(shardPath);
                files.Add(shard);
                shards[shardName] = shard;
            }
            tensors[entry.Name] = shard.Tensors.GetValueOrDefault(entry.Name)
                ?? throw new ModelFormatException(shard.Path, entry.Name, $"tensor is not in this shard, though {IndexFileName} says it is");
        }
        return tensors;
    }

    private void CheckTensors(string weightsSource)
    {
        foreach (var (role, layer) in CheckpointTensors.All(Config))
        {
            // Named here, in Hugging Face's terms, before Require would report it by role.
            if (Find(role, layer) is null)
                throw new ModelFormatException(weightsSource, TensorName(role, layer), "tensor is missing");
            CheckpointTensors.Require(this, role, layer);
        }
    }

    public void Dispose()
    {
        foreach (var file in _files)
            file.Dispose();
    }
}
