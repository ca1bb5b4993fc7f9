using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// The float32 GEMM's view of a matrix that <see cref="PackedMatrix.HoldsRowBlocks"/>: panel slices dequantized to float32.
/// Where the CPU has AVX-VNNI the GEMM on these types is <see cref="BlockGemm"/> instead, which unpacks to bytes.
/// </summary>
/// <remarks>
/// The slice is column-major ([kc][32]) and the blocks are row-major, so dequantizing is also a transpose. The vector
/// paths take 8 rows at a time, one block at a time: each row's block is unpacked to signed byte quants
/// (<see cref="IBlockUnpack"/>), the 8 × 32 quant bytes of a piece are transposed as bytes (cheaper than transposing
/// the floats they become), and each column's 8 quants are widened, converted and scaled with one FMA into one
/// 32-byte store. The values are bit for bit the scalar codecs' (see <see cref="IBlockUnpack"/>). Vector512 takes the
/// same 256-bit path: at about 1–2 ns a weight on one thread, against 18–25 for the scalar codecs, the dequantization
/// is no longer what the GEMM waits on (a 128-row GEMM on Q4_K runs within a fifth of one on float32 weights).
/// </remarks>
internal static unsafe class RowBlockPanels
{
    private const int W = PackedMatrix.PanelWidth;
    private const int Rows = UnpackedRows.Rows;
    private const int PieceBytes = UnpackedRows.PieceBytes;

    /// <summary>
    /// Columns [k0, k0 + kc) of rows [32p, 32p + 32), dequantized into a float32 slice [kc][32] (the layout the GEMM's
    /// micro-kernel reads); k0 and kc are whole blocks. Rows past the matrix are the zero padding, which decodes to 0
    /// in every block type (d = 0). <paramref name="x86Shuffles"/>: transpose with AVX2 byte shuffles where the CPU has
    /// them, else with the portable vector API. Returns the slice.
    /// </summary>
    public static float* Dequantize(PackedMatrix w, int p, int k0, int kc, float* slice, SimdLevel simd, bool x86Shuffles)
    {
        if (simd == SimdLevel.Scalar)
            return DequantizeScalar(w, p, k0, kc, slice);
        bool avx2 = x86Shuffles && Avx2.IsSupported;
        switch (w.StorageType)
        {
            case TensorDType.Q4_0: Dequantize<Q4_0Unpack>(w, p, k0, kc, slice, avx2); break;
            case TensorDType.Q4_1: Dequantize<Q4_1Unpack>(w, p, k0, kc, slice, avx2); break;
            case TensorDType.Q5_0: Dequantize<Q5_0Unpack>(w, p, k0, kc, slice, avx2); break;
            case TensorDType.Q5_1: Dequantize<Q5_1Unpack>(w, p, k0, kc, slice, avx2); break;
            case TensorDType.Q4_K: Dequantize<Q4_KUnpack>(w, p, k0, kc, slice, avx2); break;
            case TensorDType.Q5_K: Dequantize<Q5_KUnpack>(w, p, k0, kc, slice, avx2); break;
            case TensorDType.Q6_K: Dequantize<Q6_KUnpack>(w, p, k0, kc, slice, avx2); break;
            default: throw new ArgumentException($"{w.StorageType} is not stored as row-major blocks", nameof(w));
        }
        return slice;
    }

    /// <summary>Per row the scalar codec into a row buffer, then a strided transpose: the reference the vector paths match.</summary>
    private static float* DequantizeScalar(PackedMatrix w, int p, int k0, int kc, float* slice)
    {
        var type = w.StorageType;
        long start = type.ByteCount(k0);
        int bytes = checked((int)type.ByteCount(kc));
        float* row = Scratch.Current.Get(Scratch.RowValues, kc);
        var values = new Span<float>(row, kc);
        byte* first = w.Panel(p);
        for (int r = 0; r < W; r++)
        {
            WeightConvert.ToSingle(new ReadOnlySpan<byte>(first + r * w.RowBytes + start, bytes), type, values);
            for (int c = 0; c < kc; c++)
                slice[c * W + r] = row[c];
        }
        return slice;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dequantize<TBlock>(PackedMatrix w, int p, int k0, int kc, float* slice, bool avx2) where TBlock : IBlockUnpack
    {
        int pieces = TBlock.Size / UnpackedRows.PieceColumns;
        // Sized for the largest type (a super-block: 8 pieces, Q6_K's 16 groups).
        byte* quants = stackalloc byte[8 * PieceBytes];
        float* scales = stackalloc float[16 * Rows];
        float* offsets = stackalloc float[16 * Rows];
        byte* columns = stackalloc byte[PieceBytes];
        long rowBytes = w.RowBytes;
        byte* first = w.Panel(p) + (long)(k0 / TBlock.Size) * TBlock.Bytes;
        for (int b = 0; b < kc / TBlock.Size; b++)
        {
            for (int g = 0; g < W / Rows; g++)
            {
                byte* block = first + g * Rows * rowBytes + (long)b * TBlock.Bytes;
                TBlock.Unpack(block, rowBytes, quants, scales, offsets);
                float* dst = slice + (long)b * TBlock.Size * W + g * Rows;
                for (int s = 0; s < pieces; s++, dst += UnpackedRows.PieceColumns * W)
                {
                    // Columns 0–15 of the piece take the first of its groups, 16–31 the last (the same one but for Q6_K).
                    int low = s * TBlock.GroupsPerPiece, high = low + TBlock.GroupsPerPiece - 1;
                    var lowScale = Vector256.Load(scales + Rows * low);
                    var lowOffset = Vector256.Load(offsets + Rows * low);
                    var highScale = Vector256.Load(scales + Rows * high);
                    var highOffset = Vector256.Load(offsets + Rows * high);
                    if (avx2)
                        TransposeAvx2(quants + s * PieceBytes, columns, lowScale, lowOffset, highScale, highOffset, dst);
                    else
                        TransposePortable(quants + s * PieceBytes, lowScale, lowOffset, highScale, highOffset, dst);
                }
            }
        }
    }

    /// <summary>
    /// 8 rows × 32 quant bytes into 32 columns of 8 values, column c at dst + 32c: three rounds of in-lane unpacks
    /// (bytes, words, dwords) leave each column's 8 bytes side by side, which one sign-extending load widens.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposeAvx2(byte* quants, byte* columns, Vector256<float> lowScale, Vector256<float> lowOffset,
        Vector256<float> highScale, Vector256<float> highOffset, float* dst)
    {
        var r0 = Vector256.Load(quants);
        var r1 = Vector256.Load(quants + 32);
        var r2 = Vector256.Load(quants + 64);
        var r3 = Vector256.Load(quants + 96);
        var r4 = Vector256.Load(quants + 128);
        var r5 = Vector256.Load(quants + 160);
        var r6 = Vector256.Load(quants + 192);
        var r7 = Vector256.Load(quants + 224);
        // Row pairs per column: columns 0–7 (and 16–23 in the high lane), then 8–15 (24–31).
        var a0 = Avx2.UnpackLow(r0, r1).AsInt16();
        var a1 = Avx2.UnpackHigh(r0, r1).AsInt16();
        var a2 = Avx2.UnpackLow(r2, r3).AsInt16();
        var a3 = Avx2.UnpackHigh(r2, r3).AsInt16();
        var a4 = Avx2.UnpackLow(r4, r5).AsInt16();
        var a5 = Avx2.UnpackHigh(r4, r5).AsInt16();
        var a6 = Avx2.UnpackLow(r6, r7).AsInt16();
        var a7 = Avx2.UnpackHigh(r6, r7).AsInt16();
        // Rows 0–3 and 4–7 per column, four columns a vector: 0–3, 4–7, 8–11, 12–15 (+16 in the high lane).
        var b0 = Avx2.UnpackLow(a0, a2).AsInt32();
        var b1 = Avx2.UnpackHigh(a0, a2).AsInt32();
        var b2 = Avx2.UnpackLow(a1, a3).AsInt32();
        var b3 = Avx2.UnpackHigh(a1, a3).AsInt32();
        var b4 = Avx2.UnpackLow(a4, a6).AsInt32();
        var b5 = Avx2.UnpackHigh(a4, a6).AsInt32();
        var b6 = Avx2.UnpackLow(a5, a7).AsInt32();
        var b7 = Avx2.UnpackHigh(a5, a7).AsInt32();
        // All 8 rows per column, two columns a lane: vector i holds columns 2i, 2i + 1 (low lane) and 16 + 2i, 17 + 2i.
        Avx2.UnpackLow(b0, b4).Store((int*)columns);
        Avx2.UnpackHigh(b0, b4).Store((int*)(columns + 32));
        Avx2.UnpackLow(b1, b5).Store((int*)(columns + 64));
        Avx2.UnpackHigh(b1, b5).Store((int*)(columns + 96));
        Avx2.UnpackLow(b2, b6).Store((int*)(columns + 128));
        Avx2.UnpackHigh(b2, b6).Store((int*)(columns + 160));
        Avx2.UnpackLow(b3, b7).Store((int*)(columns + 192));
        Avx2.UnpackHigh(b3, b7).Store((int*)(columns + 224));
        for (int c = 0; c < 16; c++)
        {
            byte* column = columns + c / 2 * 32 + c % 2 * 8;
            var low = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32((sbyte*)column));
            var high = Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32((sbyte*)column + 16));
            Vector256.FusedMultiplyAdd(low, lowScale, lowOffset).Store(dst + c * W);
            Vector256.FusedMultiplyAdd(high, highScale, highOffset).Store(dst + (c + 16) * W);
        }
    }

    /// <summary>The same transpose with the portable vector API: each column's 8 quants gathered element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposePortable(byte* quants, Vector256<float> lowScale, Vector256<float> lowOffset,
        Vector256<float> highScale, Vector256<float> highOffset, float* dst)
    {
        sbyte* q = (sbyte*)quants;
        for (int c = 0; c < UnpackedRows.PieceColumns; c++)
        {
            var column = Vector256.Create(q[c], q[32 + c], q[64 + c], q[96 + c], q[128 + c], q[160 + c], q[192 + c], q[224 + c]);
            var (scale, offset) = c < 16 ? (lowScale, lowOffset) : (highScale, highOffset);
            Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(column), scale, offset).Store(dst + c * W);
        }
    }
}
