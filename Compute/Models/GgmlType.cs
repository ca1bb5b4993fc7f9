namespace FtpCluster.Compute.Models;

/// <summary>
/// The storage type of a GGUF tensor, numbered as in ggml.h. Ids ggml has retired (4, 5, 31-33, 36-38)
/// and the i-quants are absent: a file using them is refused as holding an unknown type.
/// </summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
}

/// <summary>
/// How a ggml type packs elements: a row is cut into blocks of <paramref name="BlockSize"/> elements,
/// each stored in <paramref name="BlockBytes"/> bytes. Plain types are blocks of one element.
/// </summary>
public readonly record struct GgmlBlockLayout(int BlockSize, int BlockBytes);

public static class GgmlTypeExtensions
{
    /// <summary>Elements per block of the k-quants (a "super-block").</summary>
    private const int SuperBlock = 256;

    /// <summary>
    /// Block layouts from ggml's type table: Q4_0 is an f16 scale and 32 4-bit quants (2 + 16 bytes),
    /// Q4_1 adds an f16 minimum, Q5_x add 4 bytes of fifth bits, Q8_0 is a scale and 32 int8 (Q8_1 adds
    /// an f16 sum); the k-quants pack 256 elements with 6- or 8-bit sub-block scales (Q8_K keeps an f32
    /// scale and 16 int16 partial sums).
    /// </summary>
    private static readonly Dictionary<GgmlType, GgmlBlockLayout> Layouts = new()
    {
        [GgmlType.F32] = new(1, 4),
        [GgmlType.F16] = new(1, 2),
        [GgmlType.BF16] = new(1, 2),
        [GgmlType.F64] = new(1, 8),
        [GgmlType.I8] = new(1, 1),
        [GgmlType.I16] = new(1, 2),
        [GgmlType.I32] = new(1, 4),
        [GgmlType.I64] = new(1, 8),
        [GgmlType.Q4_0] = new(32, 2 + 16),
        [GgmlType.Q4_1] = new(32, 2 + 2 + 16),
        [GgmlType.Q5_0] = new(32, 2 + 4 + 16),
        [GgmlType.Q5_1] = new(32, 2 + 2 + 4 + 16),
        [GgmlType.Q8_0] = new(32, 2 + 32),
        [GgmlType.Q8_1] = new(32, 2 + 2 + 32),
        [GgmlType.Q2_K] = new(SuperBlock, 16 + 64 + 2 + 2),
        [GgmlType.Q3_K] = new(SuperBlock, 32 + 64 + 12 + 2),
        [GgmlType.Q4_K] = new(SuperBlock, 2 + 2 + 12 + 128),
        [GgmlType.Q5_K] = new(SuperBlock, 2 + 2 + 12 + 32 + 128),
        [GgmlType.Q6_K] = new(SuperBlock, 128 + 64 + 16 + 2),
        [GgmlType.Q8_K] = new(SuperBlock, 4 + 256 + 16 * 2),
    };

    /// <summary>Whether <paramref name="id"/> is a type this build knows the layout of.</summary>
    public static bool IsKnown(uint id) => Layouts.ContainsKey((GgmlType)id);

    public static GgmlBlockLayout Layout(this GgmlType type) =>
        Layouts.TryGetValue(type, out var layout) ? layout : throw new ArgumentOutOfRangeException(nameof(type), $"ggml type {(uint)type} is unknown");

    /// <summary>The element type a weight of this ggml type is read as, or null when no <see cref="TensorDType"/> holds it.</summary>
    public static TensorDType? ToTensorDType(this GgmlType type) => type switch
    {
        GgmlType.F32 => TensorDType.F32,
        GgmlType.F16 => TensorDType.F16,
        GgmlType.BF16 => TensorDType.BF16,
        GgmlType.Q8_0 => TensorDType.Q8_0,
        GgmlType.Q4_0 => TensorDType.Q4_0,
        GgmlType.Q4_1 => TensorDType.Q4_1,
        GgmlType.Q5_0 => TensorDType.Q5_0,
        GgmlType.Q5_1 => TensorDType.Q5_1,
        GgmlType.Q4_K => TensorDType.Q4_K,
        GgmlType.Q5_K => TensorDType.Q5_K,
        GgmlType.Q6_K => TensorDType.Q6_K,
        _ => null,
    };

    public static GgmlType ToGgmlType(this TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => GgmlType.F32,
        TensorDType.F16 => GgmlType.F16,
        TensorDType.BF16 => GgmlType.BF16,
        TensorDType.Q8_0 => GgmlType.Q8_0,
        TensorDType.Q4_0 => GgmlType.Q4_0,
        TensorDType.Q4_1 => GgmlType.Q4_1,
        TensorDType.Q5_0 => GgmlType.Q5_0,
        TensorDType.Q5_1 => GgmlType.Q5_1,
        TensorDType.Q4_K => GgmlType.Q4_K,
        TensorDType.Q5_K => GgmlType.Q5_K,
        TensorDType.Q6_K => GgmlType.Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), $"tensor type {(int)dtype} is unknown"),
    };

    /// <summary>The GGUF tensor types <see cref="GgufFile.Weight"/> reads, for messages.</summary>
    public static string ReadableNames => string.Join(", ", Enum.GetValues<TensorDType>().Select(t => t.ToGgmlType()));

    /// <summary>The names of every known type, for messages.</summary>
    public static string KnownNames => string.Join(", ", Layouts.Keys.Order());
}
