using FtpCluster.Compute.Models;
using ILGPU;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>
/// llama.cpp's quantized blocks read in place from a device byte buffer: the matrix's rows as stored in the file,
/// row after row, each a whole number of blocks (layouts in <see cref="Q8Block"/>, <see cref="SmallBlocks"/> and
/// <see cref="SuperBlocks"/>). Blocks are 18 to 210 bytes, most not a multiple of 4, so every read is a byte read and
/// the f16 scales are put together from two bytes. A weight is dequantized in registers from its block's scale and
/// its own quant bits; lanes of a warp reading neighbouring weights share the block's bytes in one memory access.
/// </summary>
internal static class BlockBytes
{
    /// <summary>Byte offset of the block that holds element <paramref name="k"/> of row <paramref name="row"/>.</summary>
    public static long BlockAt(int row, int k, int rowLength, int blockSize, int blockBytes) =>
        ((long)row * (rowLength / blockSize) + k / blockSize) * blockBytes;

    /// <summary>The little-endian f16 at byte <paramref name="at"/>, as float32.</summary>
    public static float Half(ArrayView<byte> w, long at) => Interop.IntAsFloat((ushort)(w[at] | w[at + 1] << 8));
}

/// <summary>Q8_0 (34 bytes per 32 elements): f16 d, 32 int8 quants; d · q.</summary>
internal readonly struct Q8_0Weights : IWeightFormat<byte>
{
    public WeightQuad Four(ArrayView<byte> w, int row, int k, int rowLength) => WeightQuad.OneByOne(this, w, row, k, rowLength);

    public float Weight(ArrayView<byte> w, int row, int k, int rowLength)
    {
        long at = BlockBytes.BlockAt(row, k, rowLength, Q8Block.Size, Q8Block.Bytes);
        return BlockBytes.Half(w, at) * (sbyte)w[at + 2 + k % Q8Block.Size];
    }
}

/// <summary>
/// The 4- and 5-bit blocks of 32 elements (Q4_0, Q4_1, Q5_0, Q5_1): 16 bytes of nibbles, element i &lt; 16 in the low
/// nibble of byte i and element i + 16 in its high nibble; the Q5 types add a 32-bit word of fifth bits, bit i for element i.
/// </summary>
internal static class SmallBlockQuants
{
    /// <summary>Element <paramref name="i"/>'s 4-bit quant from the nibbles at <paramref name="qs"/>.</summary>
    public static int Nibble(ArrayView<byte> w, long qs, int i)
    {
        int packed = w[qs + (i & 15)];
        return i < 16 ? packed & 0x0F : packed >> 4;
    }

    /// <summary>Element <paramref name="i"/>'s fifth bit from the word at <paramref name="qh"/>, in place (0 or 16).</summary>
    public static int FifthBit(ArrayView<byte> w, long qh, int i) => (w[qh + i / 8] >> (i & 7) & 1) << 4;
}

/// <summary>Q4_0 (18 bytes): f16 d, nibbles; d · (q − 8).</summary>
internal readonly struct Q4_0Weights : IWeightFormat<byte>
{
    public WeightQuad Four(ArrayView<byte> w, int row, int k, int rowLength) => WeightQuad.OneByOne(this, w, row, k, rowLength);

    public float Weight(ArrayView<byte> w, int row, int k, int rowLength)
    {
        long at = BlockBytes.BlockAt(row, k, rowLength, SmallBlocks.Size, SmallBlocks.Q4_0Bytes);
        return BlockBytes.Half(w, at) * (SmallBlockQuants.Nibble(w, at + 2, k % SmallBlocks.Size) - 8);
    }
}

/// <summary>Q4_1 (20 bytes): f16 d, f16 m, nibbles; d · q + m.</summary>
internal readonly struct Q4_1Weights : IWeightFormat<byte>
{
    public WeightQuad Four(ArrayView<byte> w, int row, int k, int rowLength) => WeightQuad.OneByOne(this, w, row, k, rowLength);

    public float Weight(ArrayView<byte> w, int row, int k, int rowLength)
    {
        long at = BlockBytes.BlockAt(row, k, rowLength, SmallBlocks.Size, SmallBlocks.Q4_1Bytes);
        return BlockBytes.Half(w, at) * SmallBlockQuants.Nibble(w, at + 4, k % SmallBlocks.Size) + BlockBytes.Half(w, at + 2);
    }
}

/// <summary>Q5_0 (22 bytes): f16 d, fifth bits, nibbles; d · (q − 16).</summary>
internal readonly struct Q5_0Weights : IWeightFormat<byte>
{
    public WeightQuad Four(ArrayView<byte> w, int row, int k, int rowLength) => WeightQuad.OneByOne(this, w, row, k, rowLength);

    public float Weight(ArrayView<byte> w, int row, int k, int rowLength)
    {
        long at = BlockBytes.BlockAt(row, k, rowLength, SmallBlocks.Size, SmallBlocks.Q5_0Bytes);
        int i = k % SmallBlocks.Size;
        int q = SmallBlockQuants.Nibble(w, at + 6, i) | SmallBlockQuants.FifthBit(w, at + 2, i);
        return BlockBytes.Half(w, at) * (q - 16);
    }
}

/// <summary>Q5_1 (24 bytes): f16 d, f16 m, fifth bits, nibbles; d · q + m.</summary>
internal readonly struct Q5_1Weights : IWeightFormat<byte>
{
    public WeightQuad Four(ArrayView<byte> w, int row, int k, int rowLength) => WeightQuad.OneByOne(this, w, row, k, rowLength);

    public float Weight(ArrayView<byte> w, int row, int k, int rowLength)
    {
        long at = BlockBytes.BlockAt(row, k, rowLength, SmallBlocks.Size, SmallBlocks.Q5_1Bytes);
        int i = k % SmallBlocks.Size;
        int q = SmallBlockQuants.Nibble(w, at + 8, i) | SmallBlockQuants.FifthBit(w, at + 4, i);
        return BlockBytes.Half(w, at) * q + BlockBytes.Half(w, at + 2);
    }
}

/// <summary>
/// The k-quants' super-blocks of 256 elements. Q4_K and Q5_K share their head: f16 d, f16 dmin, 12 bytes of eight 6-bit
/// sub-block scales and mins, then (Q5_K) 32 bytes of fifth bits and 128 bytes of nibbles; element i is in sub-block
/// i / 32 and in the low nibble of byte 32 · (i / 64) + i % 32 when (i / 32) is even, the high one when odd.
/// </summary>
internal static class SuperBlockQuants
{
    /// <summary>Sub-block <paramref name="j"/>'s 6-bit scale from the 12 packed bytes at <paramref name="scales"/>.</summary>
    public static int Scale(ArrayView<byte> w, long scales, int j) => j < 4
        ? w[scales + j] & 0x3F
        : (w[scales + j + 4] & 0x0F) | (w[scales + j - 4] >> 6) << 4;

    /// <summary>Sub-block <paramref name="j"/>'s 6-bit min from the 12 packed bytes at <paramref name="scales"/>.</summary>
    public static int Min(ArrayView<byte> w, long scales, int j) => j < 4
        ? w[scales + j + 4] & 0x3F
        : (w[scales + j + 4] >> 4) | (w[scales + j] >> 6) << 4;

    /// <summary>Element <paramref name="i"/>'s 4-bit quant from the 128 bytes of nibbles at <paramref name="qs"/>.</summary>
    public static int Nibble(ArrayView<byte> w, long qs, int i)
    {
        int packed = w[qs + 32 * (i / 64) + i % 32];
        return (i & 32) == 0 ? packed & 0x0F : packed >> 4;
    }

    /// <summary>
    /// d · sc · q − dmin · m for element <paramref name="i"/> of the Q4_K or Q5_K super-block at <paramref name="at"/>,
    /// <paramref name="q"/> its quant.
    /// </summary>
    public static float Value(ArrayView<byte> w, long at, int i, int q)
    {
        int j = i / 32;
        return BlockBytes.Half(w, at) * Scale(w, at + 4, j) * q - BlockBytes.Half(w, at + 2) * Min(w, at + 4, j);
    }
}

/// <summary>Q4_K (144 bytes per 256 elements).</summary>
internal readonly struct Q4_KWeights : IWeightFormat<byte>
{
    public WeightQuad Four(ArrayView<byte> w, int row, int k, int rowLength) => WeightQuad.OneByOne(this, w, row, k, rowLength);

    public float Weight(ArrayView<byte> w, int row, int k, int rowLength)
    {
        long at = BlockBytes.BlockAt(row, k, rowLength, SuperBlocks.Size, SuperBlocks.Q4_KBytes);
        int i = k % SuperBlocks.Size;
        return SuperBlockQuants.Value(w, at, i, SuperBlockQuants.Nibble(w, at + 16, i));
    }
}

/// <summary>Q5_K (176 bytes per 256 elements): bit i / 32 of fifth-bit byte i % 32 tops element i's nibble.</summary>
internal readonly struct Q5_KWeights : IWeightFormat<byte>
{
    public WeightQuad Four(ArrayView<byte> w, int row, int k, int rowLength) => WeightQuad.OneByOne(this, w, row, k, rowLength);

    public float Weight(ArrayView<byte> w, int row, int k, int rowLength)
    {
        long at = BlockBytes.BlockAt(row, k, rowLength, SuperBlocks.Size, SuperBlocks.Q5_KBytes);
        int i = k % SuperBlocks.Size;
        int fifthBit = (w[at + 16 + i % 32] >> (i / 32) & 1) << 4;
        return SuperBlockQuants.Value(w, at, i, SuperBlockQuants.Nibble(w, at + 48, i) | fifthBit);
    }
}

/// <summary>
/// Q6_K (210 bytes per 256 elements): 128 bytes of low nibbles, 64 of high bit pairs, 16 int8 sub-block scales, f16 d;
/// d · sc · (q − 32). In each half of 128 elements, quarter r = (i % 128) / 32 and l = i % 32: the low bits are the low
/// nibble (r &lt; 2) or high nibble (r ≥ 2) of byte l + 32 · (r % 2) of the half's 64, the high bits are bits 2r, 2r + 1
/// of byte l of the half's 32.
/// </summary>
internal readonly struct Q6_KWeights : IWeightFormat<byte>
{
    public WeightQuad Four(ArrayView<byte> w, int row, int k, int rowLength) => WeightQuad.OneByOne(this, w, row, k, rowLength);

    public float Weight(ArrayView<byte> w, int row, int k, int rowLength)
    {
        long at = BlockBytes.BlockAt(row, k, rowLength, SuperBlocks.Size, SuperBlocks.Q6_KBytes);
        int i = k % SuperBlocks.Size;
        int half = i / 128, quarter = i % 128 / 32, l = i % 32;
        int low = w[at + 64 * half + 32 * (quarter & 1) + l];
        int high = w[at + 128 + 32 * half + l] >> (2 * quarter) & 3;
        int q = (quarter < 2 ? low & 0x0F : low >> 4) | high << 4;
        return BlockBytes.Half(w, at + 208) * (sbyte)w[at + 192 + i / 16] * (q - 32);
    }
}
