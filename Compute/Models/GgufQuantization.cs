namespace FtpCluster.Compute.Models;

/// <summary>
/// How <see cref="GgufQuantizer.Quantize"/> stores each tensor of a model: <see cref="Type"/> for every matrix
/// (<c>q8_0</c>, <c>q4_0</c>, <c>q4_k</c>, <c>q6_k</c>), or one of llama.cpp's k-quant mixes (<c>q4_k_s</c>,
/// <c>q4_k_m</c>, <c>q5_k_m</c>), whose matrices take <see cref="Type"/> but for those llama.cpp's quantizer raises.
/// Either way vectors stay F32, and a matrix whose rows are not whole blocks of its type falls back as llama.cpp's
/// does (<see cref="TensorDTypeExtensions.StorageForRows"/>).
/// </summary>
/// <remarks>
/// The mixes follow llama.cpp's <c>llama_tensor_get_type</c> for a dense llama or qwen2 model without an importance
/// matrix: the output head (the embedding, when the model ties them) takes Q6_K, or Q8_0 when its rows are not whole
/// super-blocks; in the "m" mixes the v and down projections of the blocks <see cref="UsesMoreBits"/> picks take Q6_K;
/// in q4_k_s the v projections of the first 4 blocks and the down projections of the first eighth take Q5_K; and a
/// 70B-class model (<see cref="IsLlamaCpp70B"/>) has its remaining Q4_K v projections raised to Q5_K.
/// <c>GgufLlamaCppTests</c> checks every tensor's type against llama.cpp's quantizer on the same model.
/// </remarks>
public sealed class GgufQuantization
{
    private enum Mix
    {
        /// <summary>Every matrix in the one type.</summary>
        None,

        /// <summary>llama.cpp's "_S" mix.</summary>
        Small,

        /// <summary>llama.cpp's "_M" mix.</summary>
        Medium,
    }

    private readonly Mix _mix;

    private GgufQuantization(string name, TensorDType type, uint fileType, Mix mix) =>
        (Name, Type, FileType, _mix) = (name, type, fileType, mix);

    /// <summary>Every quantization this build writes, by its <c>--type</c> name.</summary>
    public static IReadOnlyList<GgufQuantization> All { get; } =
    [
        Uniform("q8_0", TensorDType.Q8_0), Uniform("q4_0", TensorDType.Q4_0), Uniform("q4_k", TensorDType.Q4_K), Uniform("q6_k", TensorDType.Q6_K),
        // llama.cpp's llama_ftype numbers: MOSTLY_Q4_K_S = 14, MOSTLY_Q4_K_M = 15, MOSTLY_Q5_K_M = 17.
        new("q4_k_s", TensorDType.Q4_K, 14, Mix.Small), new("q4_k_m", TensorDType.Q4_K, 15, Mix.Medium), new("q5_k_m", TensorDType.Q5_K, 17, Mix.Medium),
    ];

    public static IReadOnlyList<string> Names { get; } = [.. All.Select(q => q.Name)];

    /// <summary>The <c>--type</c> name.</summary>
    public string Name { get; }

    /// <summary>The type of the matrices the quantization does not raise.</summary>
    public TensorDType Type { get; }

    /// <summary><c>general.file_type</c>: llama.cpp's number for the quantization (<see cref="GgufModelWriter.FileTypeOf"/> for one type).</summary>
    public uint FileType { get; }

    /// <exception cref="ArgumentException"><paramref name="name"/> names no quantization this build writes; the message lists them.</exception>
    public static GgufQuantization Parse(string name) =>
        All.FirstOrDefault(q => string.Equals(q.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown quantization type '{name}'; this build writes {string.Join(", ", Names)}");

    /// <summary>How the tensor (<paramref name="layer"/> −1 for the model's own) of this shape is stored.</summary>
    public TensorDType StorageOf(ModelConfig config, TensorRole role, int layer, long[] shape) =>
        shape.Length == 1 ? TensorDType.F32 : Chosen(config, role, layer, shape[^1]).StorageForRows(shape[^1]);

    public override string ToString() => Name;

    private static GgufQuantization Uniform(string name, TensorDType type) => new(name, type, GgufModelWriter.FileTypeOf(type), Mix.None);

    /// <summary>The type llama.cpp's quantizer picks for the matrix, before the fall-back for rows that are not whole blocks.</summary>
    private TensorDType Chosen(ModelConfig config, TensorRole role, int layer, long rowLength)
    {
        if (_mix == Mix.None) return Type;
        bool isOutput = role == TensorRole.LmHead || (role == TensorRole.TokenEmbedding && config.TiedEmbeddings);
        if (isOutput) return rowLength % Type.BlockSize() == 0 ? TensorDType.Q6_K : TensorDType.Q8_0;
        if (role == TensorRole.Value)
        {
            var type = _mix == Mix.Medium && UsesMoreBits(layer, config.Layers) ? TensorDType.Q6_K
                : _mix == Mix.Small && layer < 4 ? TensorDType.Q5_K
                : Type;
            return IsLlamaCpp70B(config) && type == TensorDType.Q4_K ? TensorDType.Q5_K : type;
        }
        if (role == TensorRole.Down)
        {
            if (_mix == Mix.Medium && UsesMoreBits(layer, config.Layers)) return TensorDType.Q6_K;
            if (_mix == Mix.Small && layer < config.Layers / 8) return TensorDType.Q5_K;
        }
        return Type;
    }

    /// <summary>llama.cpp's <c>use_more_bits</c>: the first and last eighth of the blocks, and every third between.</summary>
    private static bool UsesMoreBits(int layer, int layers) =>
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    /// <summary>What llama.cpp calls a 70B model: 80 blocks, with grouped-query attention for llama (65B without).</summary>
    private static bool IsLlamaCpp70B(ModelConfig config) =>
        config.Layers == 80 && (GgufCheckpoint.ArchitectureName(config) == "qwen2" || config.Heads != config.KvHeads);
}
