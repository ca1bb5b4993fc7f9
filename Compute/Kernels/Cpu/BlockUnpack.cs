using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// One weight row's block of a llama.cpp block type, unpacked for <see cref="RowBlockPanels"/>: its quants as signed
/// bytes in 32-column pieces, and per scale group a float scale and offset, such that scale · q + offset (one FMA)
/// is bit for bit the value the scalar codec (<see cref="SmallBlocks"/>, <see cref="SuperBlocks"/>) computes.
/// </summary>
/// <remarks>
/// Bit for bit, although the codecs multiply and add in another order: in every type the scale times the quant is
/// exact in float32 (an f16 significand of 11 bits times a 6-bit sub-block scale, or Q6_K's int8 one, times a quant of
/// at most 6 bits needs at most 23 bits), so the single rounding of the FMA is the codec's rounding of its final add or
/// subtract. Q6_K has nothing to add; its offset is −0, which leaves every product (−0 included) as it is.
/// </remarks>
internal unsafe interface IBlockUnpack
{
    /// <summary>Columns per block: 32, or 256 for the k-quants.</summary>
    static abstract int Size { get; }

    static abstract int Bytes { get; }

    /// <summary>Scale groups per 32-column piece: 1, or 2 for Q6_K, whose sub-blocks are 16 columns.</summary>
    static abstract int GroupsPerPiece { get; }

    /// <summary>What makes the quants unsigned, as the integer GEMM needs them: 32 for Q6_K (q − 32), 0 for the rest.</summary>
    static abstract int QuantBias { get; }

    /// <summary>
    /// The blocks of 8 rows at the same column (row r's at first + r · rowBytes): row r's piece s's 32 quants to
    /// quants[256s + 32r ..], its group g's scale and offset to scales[8g + r] and offsets[8g + r].
    /// </summary>
    static abstract void Unpack(byte* first, long rowBytes, byte* quants, float* scales, float* offsets);
}

/// <summary>The layout <see cref="IBlockUnpack.Unpack"/> writes: 8 rows of 32 quant bytes per piece, 8 rows' floats per group.</summary>
internal static class UnpackedRows
{
    public const int Rows = 8;
    public const int PieceColumns = 32;
    public const int PieceBytes = Rows * PieceColumns;
}

internal readonly unsafe struct Q4_0Unpack : IBlockUnpack
{
    public static int Size => SmallBlocks.Size;
    public static int Bytes => SmallBlocks.Q4_0Bytes;
    public static int GroupsPerPiece => 1;
    public static int QuantBias => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* first, long rowBytes, byte* quants, float* scales, float* offsets)
    {
        for (int row = 0; row < UnpackedRows.Rows; row++)
        {
            byte* block = first + row * rowBytes;
            BlockBits.Nibbles(block + 2).Store(quants + UnpackedRows.PieceColumns * row);
            float d = BlockBits.Half(block);
            scales[row] = d;
            offsets[row] = -8 * d;
        }
    }
}

internal readonly unsafe struct Q4_1Unpack : IBlockUnpack
{
    public static int Size => SmallBlocks.Size;
    public static int Bytes => SmallBlocks.Q4_1Bytes;
    public static int GroupsPerPiece => 1;
    public static int QuantBias => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* first, long rowBytes, byte* quants, float* scales, float* offsets)
    {
        for (int row = 0; row < UnpackedRows.Rows; row++)
        {
            byte* block = first + row * rowBytes;
            BlockBits.Nibbles(block + 4).Store(quants + UnpackedRows.PieceColumns * row);
            scales[row] = BlockBits.Half(block);
            offsets[row] = BlockBits.Half(block + 2);
        }
    }
}

internal readonly unsafe struct Q5_0Unpack : IBlockUnpack
{
    public static int Size => SmallBlocks.Size;
    public static int Bytes => SmallBlocks.Q5_0Bytes;
    public static int GroupsPerPiece => 1;
    public static int QuantBias => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* first, long rowBytes, byte* quants, float* scales, float* offsets)
    {
        for (int row = 0; row < UnpackedRows.Rows; row++)
        {
            byte* block = first + row * rowBytes;
            (BlockBits.Nibbles(block + 6) | BlockBits.FifthBits(*(uint*)(block + 2))).Store(quants + UnpackedRows.PieceColumns * row);
            float d = BlockBits.Half(block);
            scales[row] = d;
            offsets[row] = -16 * d;
        }
    }
}

internal readonly unsafe struct Q5_1Unpack : IBlockUnpack
{
    public static int Size => SmallBlocks.Size;
    public static int Bytes => SmallBlocks.Q5_1Bytes;
    public static int GroupsPerPiece => 1;
    public static int QuantBias => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* first, long rowBytes, byte* quants, float* scales, float* offsets)
    {
        for (int row = 0; row < UnpackedRows.Rows; row++)
        {
            byte* block = first + row * rowBytes;
            (BlockBits.Nibbles(block + 8) | BlockBits.FifthBits(*(uint*)(block + 4))).Store(quants + UnpackedRows.PieceColumns * row);
            scales[row] = BlockBits.Half(block);
            offsets[row] = BlockBits.Half(block + 2);
        }
    }
}

/// <summary>
/// Q4_K: 8 pieces, one per 32-element sub-block, each with d · sc_j and −dmin · m_j. The 8 rows' scales are made a row at
/// a time with vectors (8 sub-blocks a vector) and turned to the group order with one 8 × 8 transpose.
/// </summary>
internal readonly unsafe struct Q4_KUnpack : IBlockUnpack
{
    public static int Size => SuperBlocks.Size;
    public static int Bytes => SuperBlocks.Q4_KBytes;
    public static int GroupsPerPiece => 1;
    public static int QuantBias => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* first, long rowBytes, byte* quants, float* scales, float* offsets) =>
        Unpack45(first, rowBytes, quants, scales, offsets, fifthBit: false);

    /// <summary>Shared with <see cref="Q5_KUnpack"/>; the flag is a constant at each call, so the JIT drops the other's code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Unpack45(byte* first, long rowBytes, byte* quants, float* scales, float* offsets, bool fifthBit)
    {
        const int R = UnpackedRows.Rows;
        // Row-major [row][sub-block] here, transposed into the [sub-block][row] the callers read.
        float* rowScales = stackalloc float[R * 8];
        float* rowOffsets = stackalloc float[R * 8];
        for (int row = 0; row < R; row++)
        {
            byte* block = first + row * rowBytes;
            byte* qs = block + (fifthBit ? 48 : 16);
            var high = fifthBit ? Vector256.Load(block + 16) : default;
            byte* rowQuants = quants + UnpackedRows.PieceColumns * row;
            for (int c = 0; c < 4; c++)
            {
                var (low, upper) = BlockBits.KQuantPair(qs, high, c, fifthBit);
                low.Store(rowQuants + 2 * c * UnpackedRows.PieceBytes);
                upper.Store(rowQuants + (2 * c + 1) * UnpackedRows.PieceBytes);
            }
            BlockBits.ScalesAndMins(block + 4, out ulong sc, out ulong m);
            // d · sc and (−dmin) · m: products of exact values, rounded once, as the scalar codec rounds d · sc and dmin · m.
            (Vector256.ConvertToSingle(BlockBits.Widen(sc)) * Vector256.Create(BlockBits.Half(block))).Store(rowScales + 8 * row);
            (Vector256.ConvertToSingle(BlockBits.Widen(m)) * Vector256.Create(-BlockBits.Half(block + 2))).Store(rowOffsets + 8 * row);
        }
        BlockBits.TransposeWords(rowScales, (byte*)scales, 8 * sizeof(float));
        BlockBits.TransposeWords(rowOffsets, (byte*)offsets, 8 * sizeof(float));
    }
}

internal readonly unsafe struct Q5_KUnpack : IBlockUnpack
{
    public static int Size => SuperBlocks.Size;
    public static int Bytes => SuperBlocks.Q5_KBytes;
    public static int GroupsPerPiece => 1;
    public static int QuantBias => 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* first, long rowBytes, byte* quants, float* scales, float* offsets) =>
        Q4_KUnpack.Unpack45(first, rowBytes, quants, scales, offsets, fifthBit: true);
}

/// <summary>Q6_K: 8 pieces of two 16-element sub-blocks each, quants q − 32 (signed), scales d · sc_j (two 8 × 8 transposes).</summary>
internal readonly unsafe struct Q6_KUnpack : IBlockUnpack
{
    public static int Size => SuperBlocks.Size;
    public static int Bytes => SuperBlocks.Q6_KBytes;
    public static int GroupsPerPiece => 2;
    public static int QuantBias => 32;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(byte* first, long rowBytes, byte* quants, float* scales, float* offsets)
    {
        const int R = UnpackedRows.Rows;
        var bias = Vector256.Create((byte)32);
        // Row-major [row][sub-block 0–7] and [row][sub-block 8–15], transposed into the [sub-block][row] the callers read.
        float* firstHalf = stackalloc float[R * 8];
        float* secondHalf = stackalloc float[R * 8];
        for (int row = 0; row < R; row++)
        {
            byte* block = first + row * rowBytes;
            byte* rowQuants = quants + UnpackedRows.PieceColumns * row;
            // Each half is 128 elements: 64 bytes of ql (two vectors), 32 of qh; pieces 4h .. 4h + 3.
            for (int h = 0; h < 2; h++, rowQuants += 4 * UnpackedRows.PieceBytes)
            {
                var low = Vector256.Load(block + 64 * h);
                var next = Vector256.Load(block + 64 * h + 32);
                var high = Vector256.Load(block + 128 + 32 * h);
                (((low & BlockBits.LowNibble) | BlockBits.HighBits(high, 0, 3)) - bias).Store(rowQuants);
                (((next & BlockBits.LowNibble) | BlockBits.HighBits(high, 2, 3)) - bias).Store(rowQuants + UnpackedRows.PieceBytes);
                ((BlockBits.HighNibbles(low) | BlockBits.HighBits(high, 4, 3)) - bias).Store(rowQuants + 2 * UnpackedRows.PieceBytes);
                ((BlockBits.HighNibbles(next) | BlockBits.HighBits(high, 6, 3)) - bias).Store(rowQuants + 3 * UnpackedRows.PieceBytes);
            }
            var d = Vector256.Create(BlockBits.Half(block + 208));
            (Vector256.ConvertToSingle(BlockBits.WidenSigned(*(ulong*)(block + 192))) * d).Store(firstHalf + 8 * row);
            (Vector256.ConvertToSingle(BlockBits.WidenSigned(*(ulong*)(block + 200))) * d).Store(secondHalf + 8 * row);
        }
        BlockBits.TransposeWords(firstHalf, (byte*)scales, 8 * sizeof(float));
        BlockBits.TransposeWords(secondHalf, (byte*)(scales + 8 * R), 8 * sizeof(float));
        // Nothing to add: −0 leaves every product (−0 included) as it is.
        for (int g = 0; g < 16; g++)
            Vector256.Create(-0f).Store(offsets + R * g);
    }
}
