using System.Runtime.Intrinsics;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// x rows quantized to int8 as llama.cpp quantizes activations for a dot product with quantized weights: per block of
/// <see cref="BlockSize"/> values (32 as Q8_0 for the 32-element weight types, 256 as Q8_K for the k-quants),
/// d = max|x| / 127 and q = round(x / d), halves away from zero; Q8_0's d is rounded to f16 as llama.cpp stores it, Q8_K's
/// stays float32. Each row also keeps the sum of its quants per 16 values (Q8_K's bsums) and per 32, which the weight
/// types' offsets and minimums multiply.
/// </summary>
/// <remarks>One row is its k quants, then its k / BlockSize scales (float32), then its k / 16 and k / 32 sums (int32).</remarks>
internal readonly unsafe struct QuantizedActivations
{
    public const int SumGroup = 16;

    private readonly byte* _rows;

    /// <param name="pool">Quantizes the rows in parallel where given (prefill's many rows); one thread otherwise.</param>
    public QuantizedActivations(float* x, int m, int k, int blockSize, WorkerPool? pool = null)
    {
        K = k;
        BlockSize = blockSize;
        RowBytes = k + (k / blockSize + k / SumGroup + k / (2 * SumGroup)) * sizeof(float);
        _rows = (byte*)Scratch.Current.Get(Scratch.QuantizedX, ((long)m * RowBytes + 3) / 4);
        if (pool is null)
        {
            for (int r = 0; r < m; r++)
                QuantizeRow(x + (long)r * k, Row(r));
        }
        else
            pool.For(m, new QuantizeBody(this, x));
    }

    private readonly struct QuantizeBody(QuantizedActivations rows, float* x) : IForBody
    {
        public void Invoke(int r) => rows.QuantizeRow(x + (long)r * rows.K, rows.Row(r));
    }

    public int K { get; }
    public int BlockSize { get; }
    public int RowBytes { get; }

    public QuantizedRow Row(int r)
    {
        byte* row = _rows + (long)r * RowBytes;
        int* sums = (int*)(row + K) + K / BlockSize;
        return new QuantizedRow((sbyte*)row, (float*)(row + K), sums, sums + K / SumGroup);
    }

    private void QuantizeRow(float* x, QuantizedRow row)
    {
        bool roundScale = BlockSize == Models.Q8Block.Size;
        for (int b = 0; b < K / BlockSize; b++)
        {
            float d = QuantizeBlock(x + b * BlockSize, BlockSize, row.Quants + b * BlockSize, row.Sums + b * BlockSize / SumGroup);
            row.Scales[b] = roundScale ? WeightConvert.FromF16(WeightConvert.ToF16(d)) : d;
        }
        for (int b = 0; b < K / (2 * SumGroup); b++)
            row.Sums32[b] = row.Sums[2 * b] + row.Sums[2 * b + 1];
    }

    /// <summary>
    /// One block of <paramref name="size"/> values (a multiple of 16) to int8: d = max|x| / 127 (as
    /// <see cref="Models.Q8Block.Scale"/>), q = round(x / d) with halves away from zero, the sum of each 16 quants into
    /// <paramref name="sums16"/>. Returns d, unrounded.
    /// </summary>
    /// <remarks>
    /// Vectorised because it runs once per GEMV call: on a 576-wide model the scalar loop cost a tenth of a small
    /// matrix's time. The rounding is exact: v − trunc(v) has no rounding error below 2²³, so comparing it with ½
    /// decides ties as <see cref="MidpointRounding.AwayFromZero"/> does.
    /// </remarks>
    internal static float QuantizeBlock(float* x, int size, sbyte* quants, int* sums16)
    {
        var largest = Vector256<float>.Zero;
        for (int i = 0; i < size; i += 8)
            largest = Vector256.MaxNative(largest, Vector256.Abs(Vector256.Load(x + i)));
        float max = 0;
        for (int lane = 0; lane < Vector256<float>.Count; lane++)
            max = MathF.Max(max, largest.GetElement(lane));
        float d = max / 127;
        var inverse = Vector256.Create(d != 0 ? 1 / d : 0);
        for (int i = 0; i < size; i += SumGroup)
        {
            var first = Vector256.ConvertToInt32(RoundAwayFromZero(Vector256.Load(x + i) * inverse));
            var second = Vector256.ConvertToInt32(RoundAwayFromZero(Vector256.Load(x + i + 8) * inverse));
            sums16[i / SumGroup] = Vector256.Sum(first + second);
            var shorts = Vector256.Narrow(first, second);
            Vector128.Narrow(shorts.GetLower(), shorts.GetUpper()).Store(quants + i);
        }
        return d;
    }

    private static Vector256<float> RoundAwayFromZero(Vector256<float> v)
    {
        var whole = Vector256.Truncate(v);
        var up = Vector256.GreaterThanOrEqual(Vector256.Abs(v - whole), Vector256.Create(0.5f));
        return whole + (up & Vector256.CopySign(Vector256.Create(1f), v));
    }
}

/// <summary>One quantized x row: the quants, the per-block scales, and the quant sums per 16 and per 32 values.</summary>
internal readonly unsafe struct QuantizedRow(sbyte* quants, float* scales, int* sums, int* sums32)
{
    public sbyte* Quants => quants;
    public float* Scales => scales;
    public int* Sums => sums;
    public int* Sums32 => sums32;

    /// <summary>The sum of the quants of 32-value block b.</summary>
    public int Sum32(int b) => sums32[b];
}

/// <summary>f16 bits → float32 through a table: one load, where the scalar conversion costs a dozen instructions.</summary>
internal static class HalfTable
{
    public static readonly float[] Values = Build();

    private static float[] Build()
    {
        var table = new float[65536];
        for (int i = 0; i < table.Length; i++)
            table[i] = WeightConvert.FromF16((ushort)i);
        return table;
    }
}
