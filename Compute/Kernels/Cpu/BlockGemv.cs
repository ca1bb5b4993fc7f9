using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>
/// y[m, n] = x[m, k] · wᵀ for a few rows on weights kept as llama.cpp's row-major blocks (Q4_0, Q4_1, Q5_0, Q5_1,
/// Q4_K, Q5_K, Q6_K), as llama.cpp computes it: x quantized to int8 per block (<see cref="QuantizedActivations"/>:
/// Q8_0 blocks for the 32-element types, Q8_K super-blocks for the k-quants), integer dot products per sub-block,
/// scaled and summed in float32.
/// </summary>
/// <remarks>
/// The weights stay in the file's own row order: a row's blocks are one contiguous run, so a thread reading its
/// run of rows reads memory front to back, and every x row takes its dot product from the weight row while it is
/// in L1. The per-block work is kept off the float path: the k-quants' sub-block scales multiply the integer pair
/// sums (vpmaddubsw, then vpdpwssd with the scales spread by one shuffle each), the symmetric types' offsets start
/// the integer sum, and the float accumulators are split so no dependent chain sets the pace. Threads take contiguous
/// runs of rows, several per thread for balance, and the dots prefetch 4 KiB ahead (<see cref="BlockBits.Prefetch"/>):
/// a model's weights come from memory, not the caches, and without it the k-quants read at about half the bandwidth.
/// </remarks>
internal static unsafe class BlockGemv
{
    public static void Run(float* x, int m, PackedMatrix w, float* y, WorkerPool pool, GemmOptions options)
    {
        var type = w.StorageType;
        var activations = new QuantizedActivations(x, m, w.Cols, type.IsSuperBlock() ? SuperBlocks.Size : Q8Block.Size);
        var work = new Work(activations, m, w, y, Math.Min(w.Rows, 4 * pool.Threads));
        if (options.Simd == SimdLevel.Scalar)
        {
            pool.For(work.Tasks, new ScalarBody(work));
            return;
        }
        bool vnni = options.Vnni && AvxVnni.IsSupported;
        switch (type)
        {
            case TensorDType.Q4_0: For<SmallBlockDot<Q4_0Block>>(pool, work, vnni); break;
            case TensorDType.Q4_1: For<SmallBlockDot<Q4_1Block>>(pool, work, vnni); break;
            case TensorDType.Q5_0: For<SmallBlockDot<Q5_0Block>>(pool, work, vnni); break;
            case TensorDType.Q5_1: For<SmallBlockDot<Q5_1Block>>(pool, work, vnni); break;
            case TensorDType.Q4_K: For<Q4_KDot>(pool, work, vnni); break;
            case TensorDType.Q5_K: For<Q5_KDot>(pool, work, vnni); break;
            case TensorDType.Q6_K: For<Q6_KDot>(pool, work, vnni); break;
            default: throw new ArgumentException($"{type} is not stored as row-major blocks", nameof(w));
        }
    }

    private static void For<TBlock>(WorkerPool pool, Work work, bool vnni) where TBlock : IBlockDot
    {
        if (vnni)
            pool.For(work.Tasks, new Body<TBlock, VnniDot>(work));
        else
            pool.For(work.Tasks, new Body<TBlock, PortableDot>(work));
    }

    /// <summary>What every task shares: the quantized x rows, the weights, y, and how the rows are split.</summary>
    private readonly struct Work(QuantizedActivations x, int m, PackedMatrix w, float* y, int tasks)
    {
        public QuantizedActivations X => x;
        public int M => m;
        public PackedMatrix W => w;
        public float* Y => y;
        public int Tasks => tasks;

        public int FirstRow(int task) => (int)((long)w.Rows * task / tasks);
    }

    private readonly struct Body<TBlock, TDot>(Work work) : IForBody where TBlock : IBlockDot where TDot : IByteDot
    {
        // Compiled once, fully optimised, and never inlined into the pool's tier-1 dispatch: inlined there, the
        // dot product's helpers ran past the JIT's inlining budget and stayed calls (the k-quants 1.7× slower).
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        public void Invoke(int task)
        {
            var w = work.W;
            int k = w.Cols, n = w.Rows, m = work.M;
            for (int j = work.FirstRow(task); j < work.FirstRow(task + 1); j++)
            {
                byte* row = w.Row(j);
                int r = 0;
                // x rows in pairs: the k-quants unpack each weight block once for two rows.
                for (; r + 1 < m; r += 2)
                {
                    work.Y[(long)r * n + j] = TBlock.Dot2<TDot>(row, work.X.Row(r), work.X.Row(r + 1), k, out float next);
                    work.Y[(long)(r + 1) * n + j] = next;
                }
                if (r < m)
                    work.Y[(long)r * n + j] = TBlock.Dot<TDot>(row, work.X.Row(r), k);
            }
        }
    }

    /// <summary>The same sums one quant at a time, from the block codecs' own unpacking: the reference the vector paths are tested against.</summary>
    private readonly struct ScalarBody(Work work) : IForBody
    {
        public void Invoke(int task)
        {
            var w = work.W;
            long rowBytes = w.StorageType.ByteCount(w.Cols);
            for (int j = work.FirstRow(task); j < work.FirstRow(task + 1); j++)
            {
                var row = new ReadOnlySpan<byte>(w.Row(j), checked((int)rowBytes));
                for (int r = 0; r < work.M; r++)
                    work.Y[(long)r * w.Rows + j] = ScalarDot(w.StorageType, row, work.X.Row(r), w.Cols);
            }
        }
    }

    /// <summary>
    /// One row's dot product written out per type: Σ over sub-blocks of (weight scale · d_x) · Σ q_w · q_x, less the
    /// offset or minimum times the x quants' sum, in float64 (the vector paths sum in float32, so they agree to rounding).
    /// </summary>
    internal static float ScalarDot(TensorDType type, ReadOnlySpan<byte> row, QuantizedRow x, int k)
    {
        Span<int> q = stackalloc int[SuperBlocks.Size];
        Span<byte> scales = stackalloc byte[8];
        Span<byte> mins = stackalloc byte[8];
        int bytes = type.BlockBytes(), block = type.BlockSize();
        double sum = 0;
        for (int b = 0; b < k / block; b++)
        {
            var w = row.Slice(b * bytes, bytes);
            sbyte* xq = x.Quants + b * block;
            float dx = x.Scales[b];
            switch (type)
            {
                case TensorDType.Q4_0 or TensorDType.Q4_1 or TensorDType.Q5_0 or TensorDType.Q5_1:
                {
                    bool hasMin = type is TensorDType.Q4_1 or TensorDType.Q5_1;
                    SmallBlocks.Unpack(w, hasMin, type is TensorDType.Q5_0 or TensorDType.Q5_1, q);
                    int dot = 0;
                    for (int i = 0; i < block; i++)
                        dot += q[i] * xq[i];
                    float d = Half(w, 0);
                    sum += hasMin
                        ? (double)d * dx * dot + (double)Half(w, 2) * dx * x.Sum32(b)
                        : (double)d * dx * (dot - (type == TensorDType.Q4_0 ? 8 : 16) * x.Sum32(b));
                    break;
                }
                case TensorDType.Q6_K:
                {
                    SuperBlocks.UnpackQ6(w, q);
                    long dot = 0;
                    for (int i = 0; i < block; i++)
                        dot += (long)(sbyte)w[192 + i / 16] * (q[i] - 32) * xq[i];
                    sum += (double)Half(w, 208) * dx * dot;
                    break;
                }
                default:
                {
                    SuperBlocks.UnpackQ4Q5(w, type == TensorDType.Q5_K, q);
                    SuperBlocks.UnpackScales(w.Slice(4, 12), scales, mins);
                    long dot = 0, minSum = 0;
                    for (int i = 0; i < block; i++)
                        dot += (long)scales[i / 32] * q[i] * xq[i];
                    for (int j = 0; j < 8; j++)
                        minSum += mins[j] * (long)(x.Sums[16 * b + 2 * j] + x.Sums[16 * b + 2 * j + 1]);
                    sum += (double)Half(w, 0) * dx * dot - (double)Half(w, 2) * dx * minSum;
                    break;
                }
            }
        }
        return (float)sum;
    }

    private static float Half(ReadOnlySpan<byte> block, int offset) => WeightConvert.FromF16((ushort)(block[offset] | block[offset + 1] << 8));
}
