namespace FtpCluster.Compute.Models;

/// <summary>
/// A llama2.c checkpoint: seven int32 (dim, hidden, layers, heads, kv heads, vocab — negative when a
/// separate classifier follows —, seq_len), then float32 arrays in a fixed order. RoPE rotates
/// adjacent pairs with theta 10000; RMSNorm eps is 1e-5.
/// </summary>
public sealed class Llama2cCheckpoint : ICheckpoint
{
    private const int HeaderBytes = 7 * sizeof(int);
    private readonly MappedFile _file;
    private readonly Dictionary<(TensorRole, int), WeightTensor> _tensors = new();

    private Llama2cCheckpoint(MappedFile file, ModelConfig config)
    {
        _file = file;
        Config = config;
    }

    public string Source => _file.Path;
    public ModelConfig Config { get; }

    public static Llama2cCheckpoint Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var checkpoint = new Llama2cCheckpoint(file, ReadConfig(file));
            checkpoint.MapTensors();
            return checkpoint;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static ModelConfig ReadConfig(MappedFile file)
    {
        if (file.Length < HeaderBytes)
            throw new ModelFormatException(file.Path, null, $"file is truncated: {file.Length} bytes, shorter than the 28-byte llama2.c header");
        var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(file.Span(0, HeaderBytes));
        int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvHeads = h[4], vocab = h[5], seqLen = h[6];
        // The sign of vocab flags a separate classifier, so its magnitude is the size; int.MinValue has none.
        if (vocab == int.MinValue)
            throw new ModelFormatException(file.Path, null, $"header field vocab_size is {vocab}: not a vocabulary size");
        if (heads <= 0 || dim <= 0 || dim % heads != 0)
            throw new ModelFormatException(file.Path, null, $"header does not describe a llama2.c model: dim {dim} is not a positive multiple of heads {heads}");
        var config = new ModelConfig
        {
            Architecture = "llama2c",
            Dim = dim,
            HiddenDim = hidden,
            Layers = layers,
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = dim / heads,
            VocabSize = Math.Abs(vocab),
            MaxSeqLen = seqLen,
            TiedEmbeddings = vocab > 0,
            RopeLayout = RopeLayout.AdjacentPairs,
        };
        config.Validate(file.Path);
        return config;
    }

    private void MapTensors()
    {
        var c = Config;
        long offset = HeaderBytes;
        WeightTensor Next(string name, params long[] shape)
        {
            var t = new WeightTensor(name, _file, offset, TensorDType.F32, shape);
            offset += t.ByteLength;
            return t;
        }
        void PerLayer(TensorRole role, string name, params long[] shape)
        {
            for (int l = 0; l < c.Layers; l++)
                _tensors[(role, l)] = Next($"layers.{l}.{name}", shape);
        }

        long expected = HeaderBytes + 4L * ((long)c.VocabSize * c.Dim + c.Layers * (c.ParametersPerLayer) + c.Dim
            + (long)c.MaxSeqLen * c.HeadDim + (c.TiedEmbeddings ? 0 : (long)c.VocabSize * c.Dim));
        if (_file.Length < expected)
            throw new ModelFormatException(_file.Path, null,
                $"file is truncated: the header describes {expected} bytes of weights and tables, the file has {_file.Length}");

        _tensors[(TensorRole.TokenEmbedding, -1)] = Next("token_embedding_table", c.VocabSize, c.Dim);
        PerLayer(TensorRole.AttentionNorm, "rms_att_weight", c.Dim);
        PerLayer(TensorRole.Query, "wq", c.QueryDim, c.Dim);
        PerLayer(TensorRole.Key, "wk", c.KvDim, c.Dim);
        PerLayer(TensorRole.Value, "wv", c.KvDim, c.Dim);
        PerLayer(TensorRole.AttentionOutput, "wo", c.Dim, c.QueryDim);
        PerLayer(TensorRole.FfnNorm, "rms_ffn_weight", c.Dim);
        PerLayer(TensorRole.Gate, "w1", c.HiddenDim, c.Dim);
        PerLayer(TensorRole.Down, "w2", c.Dim, c.HiddenDim);
        PerLayer(TensorRole.Up, "w3", c.HiddenDim, c.Dim);
        _tensors[(TensorRole.FinalNorm, -1)] = Next("rms_final_weight", c.Dim);
        offset += 4L * c.MaxSeqLen * c.HeadDim; // legacy freq_cis_real and freq_cis_imag tables
        _tensors[(TensorRole.LmHead, -1)] = c.TiedEmbeddings
            ? _tensors[(TensorRole.TokenEmbedding, -1)]
            : Next("wcls", c.VocabSize, c.Dim);
    }

    public WeightTensor? Find(TensorRole role, int layer = -1) =>
        _tensors.GetValueOrDefault((role, CheckpointTensors.IsGlobal(role) ? -1 : layer));

    public void Dispose() => _file.Dispose();
}
