using System.Runtime.Intrinsics;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>Which vector width the kernels use; tests force the narrower paths on a wide machine.</summary>
internal enum SimdLevel
{
    Scalar,
    Vector256,
    Vector512,
}

/// <summary>Kernel choices; tests and the benchmark vary them, everything else uses <see cref="Default"/>.</summary>
/// <param name="Simd">Vector width of the kernels.</param>
/// <param name="KBlock">K block of the GEMM: a 32×512 float32 weight slice (64 KiB) stays in L2 across all row blocks.</param>
/// <param name="MaxGemvRows">Up to this many rows the GEMV (weights read once, rows share each load) beats the GEMM.</param>
/// <param name="Vnni">Integer kernels: use AVX-VNNI's dot products where the CPU has them (tests turn it off to run the portable GEMV, or the dequantizing GEMM in place of <see cref="BlockGemm"/>).</param>
/// <param name="X86Shuffles">Block-type GEMM: transpose the dequantized panels with AVX2 shuffles where the CPU has them (tests turn it off to run the portable path).</param>
internal readonly record struct GemmOptions(SimdLevel Simd, int KBlock = 512, int MaxGemvRows = 4, bool Vnni = true, bool X86Shuffles = true)
{
    public static GemmOptions Default { get; } = new(Gemm.BestSimd);
}

/// <summary>y[m, w.Rows] = x[m, w.Cols] · wᵀ on the CPU, accumulating in float32.</summary>
/// <remarks>
/// Few rows (decode) go to <see cref="Gemv"/>, which streams each weight once from memory and is bound by
/// bandwidth. More rows (prefill) go to a blocked GEMM: x is repacked into 8-row blocks, each task owns
/// one 32-row weight panel (and, when panels are few, a share of the row blocks), walks it one KC block
/// at a time, and runs the 8×32 micro-kernel over every row block against that cache-resident slice.
/// Quantized weights: the GEMV is <see cref="QuantizedGemv"/> for Q8_0 panels and <see cref="BlockGemv"/> for the
/// other block types (integer dot products on quantized x rows, as llama.cpp does). The GEMM on the other block types
/// is <see cref="BlockGemm"/>, integer too, where the CPU has AVX-VNNI; on Q8_0, and without AVX-VNNI, it dequantizes
/// each KC slice of a panel into float32 and runs the float kernel.
/// </remarks>
public static unsafe class Gemm
{
    internal static SimdLevel BestSimd { get; } =
        Vector512.IsHardwareAccelerated ? SimdLevel.Vector512
        : Vector256.IsHardwareAccelerated ? SimdLevel.Vector256
        : SimdLevel.Scalar;

    public static void Multiply(ReadOnlySpan<float> x, int m, PackedMatrix w, Span<float> y, WorkerPool pool)
        => Multiply(x, m, w, y, pool, GemmOptions.Default);

    internal static void Multiply(ReadOnlySpan<float> x, int m, PackedMatrix w, Span<float> y, WorkerPool pool, GemmOptions options)
    {
        int n = w.Rows, k = w.Cols;
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        if (x.Length < (long)m * k || y.Length < (long)m * n)
            throw new ArgumentException($"GEMM shapes: x has {x.Length} floats for [{m}, {k}], y has {y.Length} for [{m}, {n}]");
        if (m == 0 || n == 0)
            return;
        if (k == 0)
        {
            y[..(m * n)].Clear();
            return;
        }
        fixed (float* px = x, py = y)
        {
            switch (w.StorageType)
            {
                case TensorDType.F32: Run<F32Weights>(px, m, w, py, pool, options); break;
                case TensorDType.BF16: Run<Bf16Weights>(px, m, w, py, pool, options); break;
                case TensorDType.Q8_0 when m <= options.MaxGemvRows: QuantizedGemv.Run(px, m, w, py, pool, options); break;
                // Dequantized slices are float32, so the float32 kernels run on them.
                case TensorDType.Q8_0: Run<F32Weights>(px, m, w, py, pool, options with { KBlock = RoundUpToBlock(options.KBlock, Q8Block.Size) }); break;
                case var _ when w.HoldsRowBlocks && m <= options.MaxGemvRows: BlockGemv.Run(px, m, w, py, pool, options); break;
                case var _ when w.HoldsRowBlocks && BlockGemm.Supported(options): BlockGemm.Run(px, m, w, py, pool, options); break;
                case var type when w.HoldsRowBlocks:
                    Run<F32Weights>(px, m, w, py, pool, options with { KBlock = RoundUpToBlock(options.KBlock, type.BlockSize()) });
                    break;
                default: Run<F16Weights>(px, m, w, py, pool, options); break;
            }
        }
    }

    /// <summary>Quantized panels dequantize whole blocks, so their K blocks are whole blocks.</summary>
    private static int RoundUpToBlock(int kBlock, int block) => (kBlock + block - 1) / block * block;

    private static void Run<TFormat>(float* x, int m, PackedMatrix w, float* y, WorkerPool pool, GemmOptions options)
        where TFormat : IWeightFormat
    {
        if (m <= options.MaxGemvRows)
        {
            Gemv.Run<TFormat>(x, m, w, y, pool, options.Simd);
            return;
        }
        int k = w.Cols;
        int rowBlocks = (m + MicroKernel.Rows - 1) / MicroKernel.Rows;
        float* packedX = Scratch.Current.Get(Scratch.PackedX, (long)rowBlocks * MicroKernel.Rows * k);
        pool.For(rowBlocks, new PackXBody(x, m, k, packedX));

        var (rowChunks, blocksPerChunk) = SplitRowBlocks(w.Panels, rowBlocks, pool.Threads);
        pool.For(w.Panels * rowChunks, new GemmBody<TFormat>(packedX, m, w, y, rowBlocks, rowChunks, blocksPerChunk, options.KBlock, options.Simd, options.X86Shuffles));
    }

    /// <summary>
    /// How a GEMM's tasks split the work: a panel each, and, when panels are fewer than four per thread, each panel's row
    /// blocks in chunks too: enough tasks for the threads to balance even when some core is busy with something else.
    /// </summary>
    internal static (int RowChunks, int BlocksPerChunk) SplitRowBlocks(int panels, int rowBlocks, int threads)
    {
        int wanted = 4 * threads;
        int rowChunks = panels >= wanted ? 1 : Math.Min(rowBlocks, (wanted + panels - 1) / panels);
        int blocksPerChunk = (rowBlocks + rowChunks - 1) / rowChunks;
        return ((rowBlocks + blocksPerChunk - 1) / blocksPerChunk, blocksPerChunk);
    }

    /// <summary>x rows into 8-row blocks, k-major ([k][8]), zero rows past m: the micro-kernel reads it sequentially.</summary>
    private readonly struct PackXBody(float* x, int m, int k, float* packed) : IForBody
    {
        public void Invoke(int block)
        {
            const int R = MicroKernel.Rows;
            float* dst = packed + (long)block * R * k;
            for (int r = 0; r < R; r++)
            {
                int row = block * R + r;
                if (row < m)
                {
                    float* src = x + (long)row * k;
                    for (int i = 0; i < k; i++)
                        dst[i * R + r] = src[i];
                }
                else
                {
                    for (int i = 0; i < k; i++)
                        dst[i * R + r] = 0;
                }
            }
        }
    }

    private readonly struct GemmBody<TFormat>(
        float* packedX, int m, PackedMatrix w, float* y, int rowBlocks, int rowChunks, int blocksPerChunk, int kBlock, SimdLevel simd, bool x86Shuffles)
        : IForBody where TFormat : IWeightFormat
    {
        public void Invoke(int task)
        {
            const int R = MicroKernel.Rows, W = PackedMatrix.PanelWidth;
            int n = w.Rows, k = w.Cols;
            int p = task / rowChunks;
            int block0 = task % rowChunks * blocksPerChunk;
            int block1 = Math.Min(block0 + blocksPerChunk, rowBlocks);
            int cols = Math.Min(W, n - p * W);
            byte* panel = w.Panel(p);
            var scratch = Scratch.Current;
            // 16-bit weights: with several row blocks, widen each slice once into float32 and reuse it;
            // with one, widen in registers as the kernel streams the panel. Quantized slices are always
            // dequantized into float32 first.
            bool quantized = w.StorageType.IsQuantized();
            bool widen = TFormat.DType != TensorDType.F32;
            bool inRegisters = widen && simd == SimdLevel.Vector512 && block1 - block0 == 1;
            float* slice = quantized || widen && !inRegisters ? scratch.Get(Scratch.Slice, (long)W * kBlock) : null;
            float* tile = scratch.Get(Scratch.Tile, R * W);

            for (int k0 = 0; k0 < k; k0 += kBlock)
            {
                int kc = Math.Min(kBlock, k - k0);
                byte* steps = panel + (long)k0 * TFormat.StepBytes;
                float* weights = w.HoldsRowBlocks ? RowBlockPanels.Dequantize(w, p, k0, kc, slice, simd, x86Shuffles)
                    : quantized ? Q8Panels.Dequantize(panel, k0, kc, slice)
                    : widen && !inRegisters ? MicroKernel.Widen<TFormat>(steps, kc, slice, simd)
                    : (float*)steps;
                bool accumulate = k0 > 0;
                for (int b = block0; b < block1; b++)
                {
                    float* xb = packedX + (long)b * R * k + (long)k0 * R;
                    float* c = y + (long)b * R * n + p * W;
                    int rows = Math.Min(R, m - b * R);
                    if (rows == R && cols == W)
                    {
                        RunTile(inRegisters, xb, weights, kc, c, n, accumulate);
                        continue;
                    }
                    // Edge tile: go through a full 8×32 scratch tile so the kernel never writes outside y.
                    if (accumulate)
                        CopyTile(c, n, tile, W, rows, cols);
                    RunTile(inRegisters, xb, weights, kc, tile, W, accumulate);
                    CopyTile(tile, W, c, n, rows, cols);
                }
            }
        }

        private void RunTile(bool inRegisters, float* x, float* weights, int kc, float* c, int ldc, bool accumulate)
        {
            if (inRegisters)
                MicroKernel.Run512<TFormat>(x, weights, kc, c, ldc, accumulate);
            else
                MicroKernel.Run(simd, x, weights, kc, c, ldc, accumulate);
        }

        private static void CopyTile(float* src, int srcStride, float* dst, int dstStride, int rows, int cols)
        {
            for (int r = 0; r < rows; r++)
                new ReadOnlySpan<float>(src + (long)r * srcStride, cols).CopyTo(new Span<float>(dst + (long)r * dstStride, cols));
        }
    }
}

/// <summary>Per-thread 64-byte-aligned scratch buffers that grow to the largest request and are then reused.</summary>
internal sealed unsafe class Scratch
{
    public const int PackedX = 0, Slice = 1, Tile = 2, Vector = 3, QuantizedX = 4, RowValues = 5;
    private const int Slots = 6;

    [ThreadStatic]
    private static Scratch? t_current;

    private readonly float[]?[] _buffers = new float[Slots][];
    private readonly nint[] _aligned = new nint[Slots];

    public static Scratch Current => t_current ??= new Scratch();

    public float* Get(int slot, long floats)
    {
        var buffer = _buffers[slot];
        if (buffer is null || buffer.LongLength - 16 < floats)
        {
            buffer = GC.AllocateUninitializedArray<float>(checked((int)floats + 16), pinned: true);
            _buffers[slot] = buffer;
            fixed (float* p = buffer)
                _aligned[slot] = (nint)(((nuint)p + 63) & ~(nuint)63);
        }
        return (float*)_aligned[slot];
    }
}
