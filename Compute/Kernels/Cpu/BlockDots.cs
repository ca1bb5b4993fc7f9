using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// The dot product of one weight row, stored as llama.cpp's blocks of one type, with one quantized x row: integer
/// sums of weight quants times x quants per sub-block (<see cref="IByteDot"/>, 32 at a time), scaled by the sub-block's
/// scale and by d_w · d_x, the offsets and minimums taken back through the x row's quant sums.
/// </summary>
internal unsafe interface IBlockDot
{
    static abstract TensorDType Type { get; }

    static abstract float Dot<TDot>(byte* w, QuantizedRow x, int k) where TDot : IByteDot;

    /// <summary>
    /// The dots of one weight row with two x rows, <paramref name="x"/>'s returned and <paramref name="x1"/>'s in
    /// <paramref name="y1"/>: a decode step of several sequences, where the weights are unpacked once for both.
    /// </summary>
    static abstract float Dot2<TDot>(byte* w, QuantizedRow x, QuantizedRow x1, int k, out float y1) where TDot : IByteDot;
}

/// <summary>Unpacking helpers the block dots share.</summary>
internal static unsafe class BlockBits
{
    private static readonly ulong[] FifthBitBytes = BuildFifthBitBytes();

    /// <summary>0x0F in every byte; a method, not a static field, so the JIT makes it a constant in the loops.</summary>
    public static Vector256<byte> LowNibble
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create((byte)0x0F);
    }

    /// <summary>16 packed bytes as 32 quants: the low nibbles first, then the high ones (the 32-element block order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Nibbles(byte* packed)
    {
        var bytes = Vector128.Load(packed);
        var mask = Vector128.Create((byte)0x0F);
        return Vector256.Create(bytes & mask, (bytes.AsUInt16() >>> 4).AsByte() & mask);
    }

    /// <summary>32 bits as 32 bytes of 0x10 (bit set) or 0 (clear), byte i from bit i.</summary>
    /// <remarks>
    /// With AVX2: the word broadcast, each byte i given byte i / 8 of it (in-lane: every lane holds all four), masked by
    /// its own bit and compared: five instructions where the portable path takes four table loads and the inserts.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> FifthBits(uint bits)
    {
        if (Avx2.IsSupported)
        {
            var spread = Avx2.Shuffle(Vector256.Create(bits).AsByte(), Vector256.Create(0UL, 0x0101010101010101UL, 0x0202020202020202UL, 0x0303030303030303UL).AsByte());
            var bit = Vector256.Create(0x8040201008040201UL).AsByte();
            return Vector256.Equals(spread & bit, bit) & Vector256.Create((byte)0x10);
        }
        var table = FifthBitBytes;
        return Vector256.Create(table[bits & 0xFF], table[bits >> 8 & 0xFF], table[bits >> 16 & 0xFF], table[bits >> 24]).AsByte();
    }

    /// <summary>8 unsigned byte scales (little-endian in <paramref name="bytes"/>) as int16, the same 8 in both 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Scales16(ulong bytes)
    {
        var scales = Vector128.WidenLower(Vector128.CreateScalar(bytes).AsByte()).AsInt16();
        return Vector256.Create(scales, scales);
    }

    /// <summary>8 signed byte scales as int16, the same 8 in both 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> SignedScales16(ulong bytes)
    {
        var scales = Vector128.WidenLower(Vector128.CreateScalar(bytes).AsSByte());
        return Vector256.Create(scales, scales);
    }

    /// <summary>
    /// Scale <paramref name="low"/> of <paramref name="scales"/> (as <see cref="Scales16"/> makes them) in every int16 of
    /// the low 128-bit lane, scale <paramref name="high"/> in every one of the high lane: the scale vector
    /// <see cref="IByteDot.AddScaled"/> takes. The indices are constants at every call, so with AVX2 this is one vpshufb.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Spread(Vector256<short> scales, int low, int high)
    {
        if (Avx2.IsSupported)
        {
            var control = Vector256.Create(Vector128.Create((ushort)(2 * low | (2 * low + 1) << 8)), Vector128.Create((ushort)(2 * high | (2 * high + 1) << 8)));
            return Avx2.Shuffle(scales.AsByte(), control.AsByte()).AsInt16();
        }
        return Vector256.Create(Vector128.Create(scales.GetElement(low)), Vector128.Create(scales.GetElement(high)));
    }

    /// <summary>
    /// The eight 6-bit scales and eight 6-bit mins of a Q4_K or Q5_K super-block from its 12 scale bytes at
    /// <paramref name="packed"/>, byte j of each for sub-block j (<see cref="SuperBlocks.UnpackScales"/>, in registers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScalesAndMins(byte* packed, out ulong scales, out ulong mins)
    {
        uint bytes0 = *(uint*)packed, bytes4 = *(uint*)(packed + 4), bytes8 = *(uint*)(packed + 8);
        scales = (bytes0 & 0x3F3F3F3F) | (ulong)((bytes8 & 0x0F0F0F0F) | (bytes0 >> 6 & 0x03030303) << 4) << 32;
        mins = (bytes4 & 0x3F3F3F3F) | (ulong)((bytes8 >> 4 & 0x0F0F0F0F) | (bytes4 >> 6 & 0x03030303) << 4) << 32;
    }

    /// <summary>Bits <paramref name="shift"/> to <paramref name="shift"/> + width of each byte, moved to bit 4 and up.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> HighBits(Vector256<byte> bits, int shift, byte mask) =>
        (((bits.AsUInt16() >>> shift).AsByte() & Vector256.Create(mask)).AsUInt16() << 4).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> HighNibbles(Vector256<byte> bytes) => (bytes.AsUInt16() >>> 4).AsByte() & LowNibble;

    /// <summary>
    /// Sub-blocks 2c and 2c + 1 of a Q4_K or Q5_K super-block as quant bytes: the 32 bytes at qs + 32c hold 2c in their
    /// low nibbles and 2c + 1 in their high ones; Q5_K's fifth bits come from <paramref name="high"/> (its 32 qh bytes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<byte> Even, Vector256<byte> Odd) KQuantPair(byte* qs, Vector256<byte> high, int c, bool fifthBit)
    {
        var packed = Vector256.Load(qs + 32 * c);
        var even = packed & LowNibble;
        var odd = HighNibbles(packed);
        if (fifthBit)
        {
            even |= HighBits(high, 2 * c, 1);
            odd |= HighBits(high, 2 * c + 1, 1);
        }
        return (even, odd);
    }

    /// <summary>
    /// −offset × the x quants' sum in lane 0, zero elsewhere: the integer dot product started from it comes out as
    /// Σ (q − offset) · x over its lanes, so a symmetric type's offset costs no float work per block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Offset(int offset, int xSum) => Vector256.CreateScalar(-offset * xSum);

    /// <summary>
    /// A Q4_1 or Q5_1 block's share: its integer sums times d · d_x, and in lane 0 also m · d_x · Σx (d and m the
    /// block's f16 scale and minimum): one FMA off the accumulator's chain, one add on it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> WithMinimum(Vector256<int> sum, byte* w, QuantizedRow x, int b)
    {
        float dx = x.Scales[b];
        return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sum), Vector256.Create(Half(w) * dx), Vector256.CreateScalar(Half(w + 2) * dx * x.Sum32(b)));
    }

    /// <summary>
    /// How far ahead of the block being computed the dots prefetch. Measured on weights streamed from memory (1 GB of
    /// 5632×2048 matrices in turn, 2 threads): Q4_K 13.4 GB/s without prefetch, 18.6 at 1 KiB, 24.0 at 4 KiB, 23.1 at 8 KiB.
    /// </summary>
    public const int PrefetchDistance = 4096;

    /// <summary>Prefetches the cache lines of the <paramref name="bytes"/> that lie <see cref="PrefetchDistance"/> ahead of <paramref name="block"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Prefetch(byte* block, int bytes)
    {
        if (!Sse.IsSupported)
            return;
        for (int line = 0; line < bytes; line += 64)
            Sse.Prefetch0(block + PrefetchDistance + line);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(byte* p) => HalfTable.Values[*(ushort*)p];

    /// <summary>
    /// 8 rows of 8 32-bit words (row r at source + 32r bytes) transposed: word j of every row, rows in order, to
    /// dst + j · <paramref name="stride"/>, with <paramref name="add"/> added to every byte on the way. Two rounds of
    /// in-lane unpacks and one of lane swaps with AVX2, else <see cref="TransposeWordsScalar"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void TransposeWords(void* source, byte* dst, int stride, byte add = 0)
    {
        if (!Avx2.IsSupported)
        {
            TransposeWordsScalar(source, dst, stride, add);
            return;
        }
        byte* rows = (byte*)source;
        var bias = Vector256.Create(add);
        var r0 = (Vector256.Load(rows) + bias).AsInt32();
        var r1 = (Vector256.Load(rows + 32) + bias).AsInt32();
        var r2 = (Vector256.Load(rows + 64) + bias).AsInt32();
        var r3 = (Vector256.Load(rows + 96) + bias).AsInt32();
        var r4 = (Vector256.Load(rows + 128) + bias).AsInt32();
        var r5 = (Vector256.Load(rows + 160) + bias).AsInt32();
        var r6 = (Vector256.Load(rows + 192) + bias).AsInt32();
        var r7 = (Vector256.Load(rows + 224) + bias).AsInt32();
        // Row pairs per word: words 0, 1 (4, 5 in the high lane), then 2, 3 (6, 7).
        var t0 = Avx2.UnpackLow(r0, r1).AsInt64();
        var t1 = Avx2.UnpackHigh(r0, r1).AsInt64();
        var t2 = Avx2.UnpackLow(r2, r3).AsInt64();
        var t3 = Avx2.UnpackHigh(r2, r3).AsInt64();
        var t4 = Avx2.UnpackLow(r4, r5).AsInt64();
        var t5 = Avx2.UnpackHigh(r4, r5).AsInt64();
        var t6 = Avx2.UnpackLow(r6, r7).AsInt64();
        var t7 = Avx2.UnpackHigh(r6, r7).AsInt64();
        // Rows 0–3 (and 4–7) of one word: word j in the low lane, word j + 4 in the high lane.
        var u0 = Avx2.UnpackLow(t0, t2);
        var u1 = Avx2.UnpackHigh(t0, t2);
        var u2 = Avx2.UnpackLow(t1, t3);
        var u3 = Avx2.UnpackHigh(t1, t3);
        var u4 = Avx2.UnpackLow(t4, t6);
        var u5 = Avx2.UnpackHigh(t4, t6);
        var u6 = Avx2.UnpackLow(t5, t7);
        var u7 = Avx2.UnpackHigh(t5, t7);
        Avx2.Permute2x128(u0, u4, 0x20).Store((long*)dst);
        Avx2.Permute2x128(u1, u5, 0x20).Store((long*)(dst + stride));
        Avx2.Permute2x128(u2, u6, 0x20).Store((long*)(dst + 2 * stride));
        Avx2.Permute2x128(u3, u7, 0x20).Store((long*)(dst + 3 * stride));
        Avx2.Permute2x128(u0, u4, 0x31).Store((long*)(dst + 4 * stride));
        Avx2.Permute2x128(u1, u5, 0x31).Store((long*)(dst + 5 * stride));
        Avx2.Permute2x128(u2, u6, 0x31).Store((long*)(dst + 6 * stride));
        Avx2.Permute2x128(u3, u7, 0x31).Store((long*)(dst + 7 * stride));
    }

    /// <summary><see cref="TransposeWords"/> a byte at a time, for CPUs without AVX2 (and the tests, which compare the two).</summary>
    internal static void TransposeWordsScalar(void* source, byte* dst, int stride, byte add = 0)
    {
        byte* rows = (byte*)source;
        for (int j = 0; j < 8; j++)
            for (int r = 0; r < 8; r++)
                for (int b = 0; b < 4; b++)
                    dst[j * stride + 4 * r + b] = (byte)(rows[32 * r + 4 * j + b] + add);
    }

    /// <summary>The 8 bytes of <paramref name="bytes"/> (unsigned, little-endian order) as 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Widen(ulong bytes)
    {
        if (Avx2.IsSupported)
            return Avx2.ConvertToVector256Int32(Vector128.CreateScalar(bytes).AsByte());
        var words = Vector128.WidenLower(Vector128.CreateScalar(bytes).AsByte());
        return Vector256.Create(Vector128.WidenLower(words), Vector128.WidenUpper(words)).AsInt32();
    }

    /// <summary>The 8 bytes of <paramref name="bytes"/> as signed int8, in 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> WidenSigned(ulong bytes)
    {
        if (Avx2.IsSupported)
            return Avx2.ConvertToVector256Int32(Vector128.CreateScalar(bytes).AsSByte());
        var words = Vector128.WidenLower(Vector128.CreateScalar(bytes).AsSByte());
        return Vector256.Create(Vector128.WidenLower(words), Vector128.WidenUpper(words));
    }

    private static ulong[] BuildFifthBitBytes()
    {
        var table = new ulong[256];
        for (int v = 0; v < 256; v++)
            for (int i = 0; i < 8; i++)
                if ((v >> i & 1) != 0)
                    table[v] |= 0x10UL << (8 * i);
        return table;
    }
}

/// <summary>One 32-element block's share of a dot product, for <see cref="SmallBlockDot{TBlock}"/>'s loop.</summary>
internal unsafe interface ISmallBlock
{
    static abstract TensorDType Type { get; }

    static abstract int Bytes { get; }

    /// <summary>acc plus block <paramref name="b"/> (at <paramref name="w"/>) times x's block b, spread over acc's lanes.</summary>
    static abstract Vector256<float> Add<TDot>(Vector256<float> acc, byte* w, QuantizedRow x, int b) where TDot : IByteDot;
}

/// <summary>
/// The dot product of a row of 32-element blocks: odd and even blocks go to two accumulators, so the chain of
/// dependent float adds (one per 18–24 bytes) does not set the pace.
/// </summary>
internal readonly unsafe struct SmallBlockDot<TBlock> : IBlockDot where TBlock : ISmallBlock
{
    public static TensorDType Type => TBlock.Type;

    /// <summary>One pass per x row: the row's blocks are in L1 for the second.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot2<TDot>(byte* w, QuantizedRow x, QuantizedRow x1, int k, out float y1) where TDot : IByteDot
    {
        y1 = Dot<TDot>(w, x1, k);
        return Dot<TDot>(w, x, k);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<TDot>(byte* w, QuantizedRow x, int k) where TDot : IByteDot
    {
        var even = Vector256<float>.Zero;
        var odd = Vector256<float>.Zero;
        int blocks = k / SmallBlocks.Size, b = 0;
        for (; b + 1 < blocks; b += 2, w += 2 * TBlock.Bytes)
        {
            BlockBits.Prefetch(w, 2 * TBlock.Bytes);
            even = TBlock.Add<TDot>(even, w, x, b);
            odd = TBlock.Add<TDot>(odd, w + TBlock.Bytes, x, b + 1);
        }
        if (b < blocks)
            even = TBlock.Add<TDot>(even, w, x, b);
        return Vector256.Sum(even + odd);
    }
}

internal readonly unsafe struct Q4_0Block : ISmallBlock
{
    public static TensorDType Type => TensorDType.Q4_0;

    public static int Bytes => SmallBlocks.Q4_0Bytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add<TDot>(Vector256<float> acc, byte* w, QuantizedRow x, int b) where TDot : IByteDot
    {
        var sum = TDot.Add(BlockBits.Offset(8, x.Sum32(b)), BlockBits.Nibbles(w + 2), Vector256.Load(x.Quants + 32 * b));
        return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sum), Vector256.Create(BlockBits.Half(w) * x.Scales[b]), acc);
    }
}

internal readonly unsafe struct Q4_1Block : ISmallBlock
{
    public static TensorDType Type => TensorDType.Q4_1;

    public static int Bytes => SmallBlocks.Q4_1Bytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add<TDot>(Vector256<float> acc, byte* w, QuantizedRow x, int b) where TDot : IByteDot
    {
        var sum = TDot.Add(Vector256<int>.Zero, BlockBits.Nibbles(w + 4), Vector256.Load(x.Quants + 32 * b));
        return acc + BlockBits.WithMinimum(sum, w, x, b);
    }
}

internal readonly unsafe struct Q5_0Block : ISmallBlock
{
    public static TensorDType Type => TensorDType.Q5_0;

    public static int Bytes => SmallBlocks.Q5_0Bytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add<TDot>(Vector256<float> acc, byte* w, QuantizedRow x, int b) where TDot : IByteDot
    {
        var quants = BlockBits.Nibbles(w + 6) | BlockBits.FifthBits(*(uint*)(w + 2));
        var sum = TDot.Add(BlockBits.Offset(16, x.Sum32(b)), quants, Vector256.Load(x.Quants + 32 * b));
        return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sum), Vector256.Create(BlockBits.Half(w) * x.Scales[b]), acc);
    }
}

internal readonly unsafe struct Q5_1Block : ISmallBlock
{
    public static TensorDType Type => TensorDType.Q5_1;

    public static int Bytes => SmallBlocks.Q5_1Bytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add<TDot>(Vector256<float> acc, byte* w, QuantizedRow x, int b) where TDot : IByteDot
    {
        var quants = BlockBits.Nibbles(w + 8) | BlockBits.FifthBits(*(uint*)(w + 4));
        var sum = TDot.Add(Vector256<int>.Zero, quants, Vector256.Load(x.Quants + 32 * b));
        return acc + BlockBits.WithMinimum(sum, w, x, b);
    }
}

/// <summary>Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins (see <see cref="SuperBlocks"/>).</summary>
internal readonly unsafe struct Q4_KDot : IBlockDot
{
    public static TensorDType Type => TensorDType.Q4_K;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<TDot>(byte* w, QuantizedRow x, int k) where TDot : IByteDot => Q45K<TDot>(w, x, x, k, fifthBit: false, twoRows: false, out _);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot2<TDot>(byte* w, QuantizedRow x, QuantizedRow x1, int k, out float y1) where TDot : IByteDot =>
        Q45K<TDot>(w, x, x1, k, fifthBit: false, twoRows: true, out y1);

    /// <summary>
    /// Shared by <see cref="Q4_KDot"/> and <see cref="Q5_KDot"/>, for one x row or two; the flags are constants at each
    /// call, so the JIT drops the code the call does not use.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Q45K<TDot>(byte* w, QuantizedRow x, QuantizedRow x1, int k, bool fifthBit, bool twoRows, out float y1) where TDot : IByteDot
    {
        Vector256<float> acc = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
        int bytes = fifthBit ? SuperBlocks.Q5_KBytes : SuperBlocks.Q4_KBytes;
        for (int b = 0; b < k / 256; b++, w += bytes)
        {
            BlockBits.Prefetch(w, bytes);
            BlockBits.ScalesAndMins(w + 4, out ulong scales, out ulong mins);
            sbyte* xq = x.Quants + 256 * b, xq1 = x1.Quants + 256 * b;
            byte* qs = w + (fifthBit ? 48 : 16);
            var high = fifthBit ? Vector256.Load(w + 16) : default;
            var scales16 = BlockBits.Scales16(scales);
            // Two integer chains per row (low and high nibbles), so the dependent vpdpwssd latencies overlap.
            Vector256<int> lows = Vector256<int>.Zero, highs = Vector256<int>.Zero, lows1 = Vector256<int>.Zero, highs1 = Vector256<int>.Zero;
            // Written out, not a loop: the sub-block indices must be constants for Spread to be one shuffle.
            Chunk<TDot>(ref lows, ref highs, ref lows1, ref highs1, qs, high, xq, xq1, scales16, 0, fifthBit, twoRows);
            Chunk<TDot>(ref lows, ref highs, ref lows1, ref highs1, qs, high, xq, xq1, scales16, 1, fifthBit, twoRows);
            Chunk<TDot>(ref lows, ref highs, ref lows1, ref highs1, qs, high, xq, xq1, scales16, 2, fifthBit, twoRows);
            Chunk<TDot>(ref lows, ref highs, ref lows1, ref highs1, qs, high, xq, xq1, scales16, 3, fifthBit, twoRows);
            var wideMins = BlockBits.Widen(mins);
            float d = BlockBits.Half(w), dmin = BlockBits.Half(w + 2);
            acc = AddSuperBlock(acc, lows + highs, wideMins * Vector256.Load(x.Sums32 + 8 * b), d * x.Scales[b], -dmin * x.Scales[b]);
            if (twoRows)
                acc1 = AddSuperBlock(acc1, lows1 + highs1, wideMins * Vector256.Load(x1.Sums32 + 8 * b), d * x1.Scales[b], -dmin * x1.Scales[b]);
        }
        y1 = twoRows ? Vector256.Sum(acc1) : 0f;
        return Vector256.Sum(acc);
    }

    /// <summary>
    /// Sub-blocks 2c and 2c + 1: 32 packed bytes, their low nibbles against x[64c..], their high ones against
    /// x[64c + 32..], for one x row or two.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Chunk<TDot>(ref Vector256<int> lows, ref Vector256<int> highs, ref Vector256<int> lows1, ref Vector256<int> highs1,
        byte* qs, Vector256<byte> high, sbyte* xq, sbyte* xq1, Vector256<short> scales16, int c, bool fifthBit, bool twoRows)
        where TDot : IByteDot
    {
        var (low, upper) = BlockBits.KQuantPair(qs, high, c, fifthBit);
        var lowScales = BlockBits.Spread(scales16, 2 * c, 2 * c);
        var highScales = BlockBits.Spread(scales16, 2 * c + 1, 2 * c + 1);
        lows = TDot.AddScaled(lows, low, Vector256.Load(xq + 64 * c), lowScales);
        highs = TDot.AddScaled(highs, upper, Vector256.Load(xq + 64 * c + 32), highScales);
        if (twoRows)
        {
            lows1 = TDot.AddScaled(lows1, low, Vector256.Load(xq1 + 64 * c), lowScales);
            highs1 = TDot.AddScaled(highs1, upper, Vector256.Load(xq1 + 64 * c + 32), highScales);
        }
    }

    /// <summary>acc plus a super-block's integer sums times d · d_x, less its mins' products times dmin · d_x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> AddSuperBlock(Vector256<float> acc, Vector256<int> total, Vector256<int> minProducts, float scale, float minScale)
    {
        acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(total), Vector256.Create(scale), acc);
        return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(minProducts), Vector256.Create(minScale), acc);
    }
}

internal readonly unsafe struct Q5_KDot : IBlockDot
{
    public static TensorDType Type => TensorDType.Q5_K;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<TDot>(byte* w, QuantizedRow x, int k) where TDot : IByteDot => Q4_KDot.Q45K<TDot>(w, x, x, k, fifthBit: true, twoRows: false, out _);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot2<TDot>(byte* w, QuantizedRow x, QuantizedRow x1, int k, out float y1) where TDot : IByteDot =>
        Q4_KDot.Q45K<TDot>(w, x, x1, k, fifthBit: true, twoRows: true, out y1);
}

/// <summary>Q6_K: 16 sub-blocks of 16 with int8 scales; a 32-byte vector spans two sub-blocks, so the scales go in pairs.</summary>
internal readonly unsafe struct Q6_KDot : IBlockDot
{
    public static TensorDType Type => TensorDType.Q6_K;

    /// <summary>
    /// One pass per x row: sharing the unpacking between two rows, as the Q4_K dot does, made both the one-row and the
    /// two-row dot slower here (measured 2026-12-06: the one-row dot 45% slower), so the pair takes two passes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot2<TDot>(byte* w, QuantizedRow x, QuantizedRow x1, int k, out float y1) where TDot : IByteDot
    {
        y1 = Dot<TDot>(w, x1, k);
        return Dot<TDot>(w, x, k);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<TDot>(byte* w, QuantizedRow x, int k) where TDot : IByteDot
    {
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < k / 256; b++, w += SuperBlocks.Q6_KBytes)
        {
            BlockBits.Prefetch(w, SuperBlocks.Q6_KBytes);
            sbyte* sc = (sbyte*)(w + 192);
            ulong first = *(ulong*)sc, second = *(ulong*)(sc + 8);
            sbyte* xq = x.Quants + 256 * b;
            // The two halves as two integer chains, so the dependent vpdpwssd latencies overlap.
            var total = HalfBlock<TDot>(w, xq, BlockBits.SignedScales16(first), 0) + HalfBlock<TDot>(w, xq, BlockBits.SignedScales16(second), 1);
            // Σ sc · 32 · Σx per sub-block, taken off in int32 before the one conversion.
            var offset = BlockBits.WidenSigned(first) * Vector256.Load(x.Sums + 16 * b)
                + BlockBits.WidenSigned(second) * Vector256.Load(x.Sums + 16 * b + 8);
            float dd = BlockBits.Half(w + 208) * x.Scales[b];
            acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(total - (offset << 5)), Vector256.Create(dd), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary>Elements 128h to 128h + 127: four 32-element vectors, each two sub-blocks of 16 with their scales side by side.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> HalfBlock<TDot>(byte* w, sbyte* xq, Vector256<short> scales16, int h) where TDot : IByteDot
    {
        byte* ql = w + 64 * h;
        var low = Vector256.Load(ql);
        var next = Vector256.Load(ql + 32);
        var high = Vector256.Load(w + 128 + 32 * h);
        xq += 128 * h;
        var q1 = (low & BlockBits.LowNibble) | BlockBits.HighBits(high, 0, 3);
        var q2 = (next & BlockBits.LowNibble) | BlockBits.HighBits(high, 2, 3);
        var q3 = BlockBits.HighNibbles(low) | BlockBits.HighBits(high, 4, 3);
        var q4 = BlockBits.HighNibbles(next) | BlockBits.HighBits(high, 6, 3);
        var total = TDot.AddScaled(Vector256<int>.Zero, q1, Vector256.Load(xq), BlockBits.Spread(scales16, 0, 1));
        total = TDot.AddScaled(total, q2, Vector256.Load(xq + 32), BlockBits.Spread(scales16, 2, 3));
        total = TDot.AddScaled(total, q3, Vector256.Load(xq + 64), BlockBits.Spread(scales16, 4, 5));
        return TDot.AddScaled(total, q4, Vector256.Load(xq + 96), BlockBits.Spread(scales16, 6, 7));
    }
}
