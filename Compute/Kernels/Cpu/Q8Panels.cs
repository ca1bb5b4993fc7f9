using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// How a <see cref="PackedMatrix"/> holds Q8_0 weights: the 32 rows of a panel, one 32-column block at a
/// time, in exactly the bytes llama.cpp's blocks take (32 × 34 = 1088 per block of a panel).
/// </summary>
/// <remarks>
/// A panel block is the 32 rows' f16 scales (64 bytes, in the paired order of a 16-bit k-step, see
/// <see cref="IWeightFormat"/>), then 8 groups of 4 columns; a group is 32 rows × 4 bytes, row r's quants
/// for the group's 4 columns in one 32-bit word. That word is what an integer dot-product instruction
/// (vpdpbusd) multiplies by 4 activation bytes and sums, so one 256-bit load covers 8 rows × 4 columns. The
/// quants are stored offset by 128 (q XOR 0x80, 0–255): vpdpbusd takes one unsigned operand, and the offset
/// is taken back per block as 128 × Σ activations.
/// </remarks>
internal static unsafe class Q8Panels
{
    private const int W = PackedMatrix.PanelWidth;
    public const int ScaleBytes = W * sizeof(ushort);
    public const int GroupColumns = 4;
    public const int GroupBytes = W * GroupColumns;
    public const int Groups = Q8Block.Size / GroupColumns;
    public const int BlockBytes = ScaleBytes + Groups * GroupBytes;

    /// <summary>Writes one row's llama.cpp Q8_0 blocks (Cols / 32 of them) as row <paramref name="row"/> of the panel.</summary>
    public static void WriteRow(byte* panel, int row, ReadOnlySpan<byte> blocks)
    {
        int slot = Bf16Weights.Slot(row);
        for (int b = 0; b < blocks.Length / Q8Block.Bytes; b++)
        {
            var source = blocks.Slice(b * Q8Block.Bytes, Q8Block.Bytes);
            byte* block = panel + (long)b * BlockBytes;
            ((ushort*)block)[slot] = BinaryPrimitives.ReadUInt16LittleEndian(source);
            for (int c = 0; c < Q8Block.Size; c++)
                block[ScaleBytes + c / GroupColumns * GroupBytes + row * GroupColumns + c % GroupColumns] = (byte)(source[2 + c] ^ 0x80);
        }
    }

    /// <summary>The weight at (row, col) of the panel: its block's scale times its quant.</summary>
    public static float Load(byte* panel, int row, int col)
    {
        byte* block = panel + (long)(col / Q8Block.Size) * BlockBytes;
        int c = col % Q8Block.Size;
        sbyte q = (sbyte)(block[ScaleBytes + c / GroupColumns * GroupBytes + row * GroupColumns + c % GroupColumns] ^ 0x80);
        return F16Weights.Load(block, row) * q;
    }

    /// <summary>
    /// Columns [k0, k0 + kc) of the panel, dequantized into a float32 slice [kc][32] (the layout the GEMM's
    /// micro-kernel reads); k0 and kc are multiples of 32. Returns the slice.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float* Dequantize(byte* panel, int k0, int kc, float* slice)
    {
        float* dst = slice;
        for (int b = k0 / Q8Block.Size; b < (k0 + kc) / Q8Block.Size; b++)
        {
            byte* block = panel + (long)b * BlockBytes;
            F16Weights.Load(block, out Vector256<float> d0, out Vector256<float> d8, out Vector256<float> d16, out Vector256<float> d24);
            var flip = Vector256.Create(0x80808080u).AsInt32();
            for (int g = 0; g < Groups; g++)
            {
                int* group = (int*)(block + ScaleBytes + g * GroupBytes);
                var q0 = Vector256.Load(group) ^ flip;
                var q8 = Vector256.Load(group + 8) ^ flip;
                var q16 = Vector256.Load(group + 16) ^ flip;
                var q24 = Vector256.Load(group + 24) ^ flip;
                for (int j = 0; j < GroupColumns; j++, dst += W)
                {
                    // Byte j of each word, sign-extended: to the top, then an arithmetic shift back.
                    int up = 24 - 8 * j;
                    (Vector256.ConvertToSingle((q0 << up) >> 24) * d0).Store(dst);
                    (Vector256.ConvertToSingle((q8 << up) >> 24) * d8).Store(dst + 8);
                    (Vector256.ConvertToSingle((q16 << up) >> 24) * d16).Store(dst + 16);
                    (Vector256.ConvertToSingle((q24 << up) >> 24) * d24).Store(dst + 24);
                }
            }
        }
        return slice;
    }
}
