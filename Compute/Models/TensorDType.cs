namespace FtpCluster.Compute.Models;

/// <summary>Element types a weight may be stored in. Arithmetic is always float32.</summary>
public enum TensorDType
{
    F32,
    F16,
    BF16,
}

public static class TensorDTypeExtensions
{
    public static int Size(this TensorDType t) => t == TensorDType.F32 ? 4 : 2;

    /// <summary>The safetensors spelling ("F32", "F16", "BF16").</summary>
    public static string SafetensorsName(this TensorDType t) => t switch
    {
        TensorDType.F32 => "F32",
        TensorDType.F16 => "F16",
        _ => "BF16",
    };

    public static TensorDType Parse(string name) => name.ToLowerInvariant() switch
    {
        "f32" or "float32" => TensorDType.F32,
        "f16" or "float16" => TensorDType.F16,
        "bf16" or "bfloat16" => TensorDType.BF16,
        _ => throw new ArgumentException($"unknown dtype '{name}' (expected f32, f16 or bf16)"),
    };
}
