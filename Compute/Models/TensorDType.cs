namespace FtpCluster.Compute.Models;

/// <summary>Element types a weight may be stored in. Arithmetic is always float32.</summary>
/// <remarks>
/// <see cref="Q8_0"/> is llama.cpp's 8-bit block type: each run of 32 consecutive elements of a row is a
/// block of one f16 scale d and 32 int8 quants q (34 bytes), and element i is d · q[i]. A quantized type
/// has no per-element size; its rows must be a whole number of blocks.
/// </remarks>
public enum TensorDType
{
    F32,
    F16,
    BF16,
    Q8_0,
}

public static class TensorDTypeExtensions
{
    /// <summary>Whether values of this type are stored in blocks that share a scale.</summary>
    public static bool IsQuantized(this TensorDType t) => t == TensorDType.Q8_0;

    /// <summary>Elements per block: 32 for the quantized types, 1 for the others.</summary>
    public static int BlockSize(this TensorDType t) => t.IsQuantized() ? Q8Block.Size : 1;

    /// <summary>Bytes per block (per element for the plain types).</summary>
    public static int BlockBytes(this TensorDType t) => t switch
    {
        TensorDType.F32 => 4,
        TensorDType.Q8_0 => Q8Block.Bytes,
        _ => 2,
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

    /// <summary>The safetensors spelling ("F32", "F16", "BF16"); safetensors has no quantized types.</summary>
    public static string SafetensorsName(this TensorDType t) => t switch
    {
        TensorDType.F32 => "F32",
        TensorDType.F16 => "F16",
        TensorDType.BF16 => "BF16",
        _ => throw new InvalidOperationException($"safetensors has no {t} type"),
    };

    public static TensorDType Parse(string name) => name.ToLowerInvariant() switch
    {
        "f32" or "float32" => TensorDType.F32,
        "f16" or "float16" => TensorDType.F16,
        "bf16" or "bfloat16" => TensorDType.BF16,
        "q8_0" => TensorDType.Q8_0,
        _ => throw new ArgumentException($"unknown dtype '{name}' (expected f32, f16, bf16 or q8_0)"),
    };
}
