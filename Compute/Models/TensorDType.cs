namespace FtpCluster.Compute.Models;

/// <summary>Element types a weight may be stored in. Arithmetic is always float32.</summary>
/// <remarks>
/// The quantized types are llama.cpp's block types, bit for bit: each run of <see cref="TensorDTypeExtensions.BlockSize"/>
/// consecutive elements of a row is one block of <see cref="TensorDTypeExtensions.BlockBytes"/> bytes (scales and
/// packed quants; see <see cref="Q8Block"/>, <see cref="SmallBlocks"/> and <see cref="SuperBlocks"/>). A quantized type
/// has no per-element size; its rows must be a whole number of blocks.
/// </remarks>
public enum TensorDType
{
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4_K,
    Q5_K,
    Q6_K,
}

public static class TensorDTypeExtensions
{
    /// <summary>Elements per block of the k-quants (llama.cpp's QK_K, a "super-block").</summary>
    public const int SuperBlockSize = 256;

    /// <summary>Whether values of this type are stored in blocks that share a scale.</summary>
    public static bool IsQuantized(this TensorDType t) => t >= TensorDType.Q8_0;

    /// <summary>Whether this is one of the k-quants, whose blocks hold 256 elements.</summary>
    public static bool IsSuperBlock(this TensorDType t) => t is TensorDType.Q4_K or TensorDType.Q5_K or TensorDType.Q6_K;

    /// <summary>Elements per block: 256 for the k-quants, 32 for the other quantized types, 1 for the plain ones.</summary>
    public static int BlockSize(this TensorDType t) => t.IsSuperBlock() ? SuperBlockSize : t.IsQuantized() ? Q8Block.Size : 1;

    /// <summary>Bytes per block (per element for the plain types), as in llama.cpp's type table.</summary>
    public static int BlockBytes(this TensorDType t) => t switch
    {
        TensorDType.F32 => 4,
        TensorDType.F16 or TensorDType.BF16 => 2,
        TensorDType.Q8_0 => Q8Block.Bytes,
        TensorDType.Q4_0 => SmallBlocks.Q4_0Bytes,
        TensorDType.Q4_1 => SmallBlocks.Q4_1Bytes,
        TensorDType.Q5_0 => SmallBlocks.Q5_0Bytes,
        TensorDType.Q5_1 => SmallBlocks.Q5_1Bytes,
        TensorDType.Q4_K => SuperBlocks.Q4_KBytes,
        TensorDType.Q5_K => SuperBlocks.Q5_KBytes,
        TensorDType.Q6_K => SuperBlocks.Q6_KBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(t), $"tensor type {(int)t} is unknown"),
    };

    /// <summary>Bytes of one element of a plain type; a quantized type has none (use <see cref="ByteCount"/>).</summary>
    public static int Size(this TensorDType t) => t.IsQuantized()
        ? throw new InvalidOperationException($"{t} stores blocks of {t.BlockSize()} elements in {t.BlockBytes()} bytes and has no per-element size")
        : t.BlockBytes();

    /// <summary>Bytes of <paramref name="elements"/> values, which must be a whole number of blocks.</summary>
    public static long ByteCount(this TensorDType t, long elements)
    {
        int block = t.BlockSize();
        if (elements % block != 0)
            throw new ArgumentException($"{elements} elements are not a whole number of {t} blocks of {block}", nameof(elements));
        return elements / block * t.BlockBytes();
    }

    /// <summary>
    /// The type a matrix whose rows hold <paramref name="rowLength"/> elements is stored in when <paramref name="target"/>
    /// is asked for, as llama.cpp's quantizer chooses (llama_tensor_get_type): the target when the rows are whole
    /// blocks of it; else a k-quant falls back to a 32-element type of about its size (Q4_K → Q5_0, Q5_K → Q5_1,
    /// Q6_K → Q8_0); and rows that are not whole blocks of that either stay F16. A plain target is returned as it is.
    /// </summary>
    public static TensorDType StorageForRows(this TensorDType target, long rowLength)
    {
        if (!target.IsQuantized() || rowLength % target.BlockSize() == 0)
            return target;
        var fallback = target switch
        {
            TensorDType.Q4_K => TensorDType.Q5_0,
            TensorDType.Q5_K => TensorDType.Q5_1,
            TensorDType.Q6_K => TensorDType.Q8_0,
            _ => TensorDType.F16,
        };
        return rowLength % fallback.BlockSize() == 0 ? fallback : TensorDType.F16;
    }

    /// <summary>The safetensors spelling ("F32", "F16", "BF16"); safetensors has no quantized types.</summary>
    public static string SafetensorsName(this TensorDType t) => t switch
    {
        TensorDType.F32 => "F32",
        TensorDType.F16 => "F16",
        TensorDType.BF16 => "BF16",
        _ => throw new InvalidOperationException($"safetensors has no {t} type"),
    };

    /// <summary>The lower-case names <see cref="Parse"/> accepts, one per type.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Enum.GetValues<TensorDType>().Select(t => t.ToString().ToLowerInvariant())];

    public static TensorDType Parse(string name) => name.ToLowerInvariant() switch
    {
        "f32" or "float32" => TensorDType.F32,
        "f16" or "float16" => TensorDType.F16,
        "bf16" or "bfloat16" => TensorDType.BF16,
        var lower when Enum.TryParse<TensorDType>(lower, ignoreCase: true, out var t) && Names.Contains(lower) => t,
        _ => throw new ArgumentException($"unknown dtype '{name}' (expected {string.Join(", ", Names.SkipLast(1))} or {Names[^1]})"),
    };
}
