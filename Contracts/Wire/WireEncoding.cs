namespace FtpCluster.Grains.Wire;

/// <summary>How the hidden rows of an activation packet are stored on the wire.</summary>
/// <remarks>The numeric values are the codes written into packets: never renumber them.</remarks>
public enum WireEncoding : byte
{
    /// <summary>float32, bit-exact.</summary>
    F32 = 0,

    /// <summary>IEEE half, rounded to nearest even; magnitudes above 65504 become infinity.</summary>
    F16 = 1,

    /// <summary>bfloat16 (the top 16 bits of a float32), rounded to nearest even.</summary>
    BF16 = 2,

    /// <summary>Symmetric int8 with one float32 scale per row.</summary>
    Int8PerRow = 3,

    /// <summary>Symmetric int8 with one float32 scale per 32 consecutive values of a row.</summary>
    Int8PerBlock32 = 4,
}

/// <summary>The command-line words for <see cref="WireEncoding"/>.</summary>
public static class WireEncodings
{
    public static IReadOnlyList<WireEncoding> All { get; } =
        [WireEncoding.F32, WireEncoding.F16, WireEncoding.BF16, WireEncoding.Int8PerRow, WireEncoding.Int8PerBlock32];

    /// <summary>
    /// Reads <c>f32</c>, <c>f16</c>, <c>bf16</c>, <c>int8</c> (per-32 scales: one outlier then costs
    /// precision to 31 neighbours instead of a whole row) or <c>int8-row</c>.
    /// </summary>
    public static WireEncoding Parse(string word) => word.Trim().ToLowerInvariant() switch
    {
        "f32" => WireEncoding.F32,
        "f16" => WireEncoding.F16,
        "bf16" => WireEncoding.BF16,
        "int8" => WireEncoding.Int8PerBlock32,
        "int8-row" => WireEncoding.Int8PerRow,
        _ => throw new ArgumentException(
            $"unknown wire encoding '{word}': expected f32, f16, bf16, int8 (a scale per 32 values) or int8-row (a scale per row)",
            nameof(word)),
    };

    /// <summary>The word <see cref="Parse"/> reads back; also the encoding's tag in metrics.</summary>
    public static string CliWord(this WireEncoding encoding) => encoding switch
    {
        WireEncoding.F32 => "f32",
        WireEncoding.F16 => "f16",
        WireEncoding.BF16 => "bf16",
        WireEncoding.Int8PerRow => "int8-row",
        WireEncoding.Int8PerBlock32 => "int8",
        _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "not a wire encoding"),
    };
}
