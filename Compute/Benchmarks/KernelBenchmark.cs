using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Text.Json.Serialization;
using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Benchmarks;

/// <param name="Threads">Pool threads (the caller included); 0 means one per logical processor.</param>
/// <param name="Quick">Tiny sizes and one repetition: checks that the benchmark runs, measures nothing useful.</param>
/// <param name="Repetitions">Timed repetitions per measurement; the median is reported.</param>
/// <param name="MinRepetitionMilliseconds">Each repetition repeats the operation until it lasts at least this long.</param>
public sealed record KernelBenchmarkOptions(int Threads = 0, bool Quick = false, int Repetitions = 7, double MinRepetitionMilliseconds = 25);

/// <summary>One run of <see cref="KernelBenchmark.Run"/>. GB are 10⁹ bytes.</summary>
/// <remarks>
/// Every figure is the median of the timed repetitions, and the *Best figures the fastest one. On a shared
/// machine the medians move with the neighbours' load; best against best (the PercentOf*Best fields) is the
/// steadier measure of how close a kernel gets to what the machine can do.
/// </remarks>
/// <param name="Simd">Vector width the kernels used (Vector512, Vector256 or Scalar).</param>
/// <param name="FmaPeakGflops">Register-only FMA loop on every pool thread: the most the GEMM could reach.</param>
/// <param name="ReadBandwidthGBPerSecond">Vectorised sum over a buffer far larger than the caches, on every pool thread.</param>
/// <param name="CopyBandwidthGBPerSecond">Large memory copy on every pool thread, counting bytes read plus bytes written.</param>
/// <param name="PoolDispatchMicroseconds">One fork-join of the pool with an empty body per thread.</param>
public sealed record KernelBenchmarkResult(
    string Simd,
    int Threads,
    bool Quick,
    double FmaPeakGflops,
    double FmaPeakBestGflops,
    double ReadBandwidthGBPerSecond,
    double ReadBandwidthBestGBPerSecond,
    double CopyBandwidthGBPerSecond,
    double PoolDispatchMicroseconds,
    IReadOnlyList<GemmMeasurement> Gemm,
    IReadOnlyList<GemvMeasurement> Gemv);

/// <summary>y[M, N] = x[M, K] · wᵀ with w stored as <paramref name="Storage"/>.</summary>
public sealed record GemmMeasurement(
    int M, int N, int K, string Storage, double Milliseconds, double Gflops, double PercentOfPeak, double BestGflops, double PercentOfPeakBest);

/// <summary>Decode-shaped multiply; <paramref name="WeightGBPerSecond"/> counts the bytes of the packed weights read.</summary>
/// <param name="SameBufferReadGBPerSecond">
/// The vectorised sum run over this matrix's own packed weights. In a virtual machine two buffers can read at
/// quite different speeds (how the host backs the pages), so this is the fairest ceiling for this GEMV.
/// </param>
/// <param name="PercentOfSameBufferRead">Best GEMV rate against the best same-buffer read rate.</param>
/// <param name="FromMemory">
/// The GEMV ran on copies of the matrix in turn, 1 GB of them, so its weights came from memory as a model's do in
/// decode; otherwise one matrix, which may stay in a large last-level cache (300 MB on the development VM).
/// </param>
public sealed record GemvMeasurement(
    int M, int N, int K, string Storage, double Milliseconds, double WeightGBPerSecond, double PercentOfReadBandwidth,
    double BestWeightGBPerSecond, double PercentOfReadBandwidthBest, double SameBufferReadGBPerSecond, double PercentOfSameBufferRead,
    bool FromMemory);

/// <summary>System.Text.Json metadata for the benchmark records, snake_case like every ftpcluster --json output.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(KernelBenchmarkResult))]
public sealed partial class KernelBenchmarkJsonContext : JsonSerializerContext;

/// <summary>
/// Measures, in one run, what the CPU kernels reach against what the machine allows: FMA peak against
/// GEMM throughput at prefill shapes, and read bandwidth against GEMV throughput at decode shapes.
/// </summary>
public static class KernelBenchmark
{
    // smollm2-135m prefill projections (q/o, gate/up, down) at two prompt lengths, and a large square one.
    private static readonly (int M, int N, int K, TensorDType Storage)[] GemmShapes =
    [
        (128, 576, 576, TensorDType.F32), (128, 1536, 576, TensorDType.F32), (128, 576, 1536, TensorDType.F32),
        (512, 576, 576, TensorDType.F32), (512, 1536, 576, TensorDType.F32), (512, 576, 1536, TensorDType.F32),
        (512, 2048, 2048, TensorDType.F32), (512, 2048, 2048, TensorDType.BF16), (512, 2048, 2048, TensorDType.F16),
        // Prefill on a q4_k_m file: the k-quants where rows are whole super-blocks (smollm2's down projection), and the
        // Q5_0 that llama.cpp writes in their place on rows of 576; each KC slice is dequantized before the float kernel.
        (128, 576, 1536, TensorDType.Q4_K), (128, 576, 1536, TensorDType.Q6_K), (128, 1536, 576, TensorDType.Q5_0),
        (512, 2048, 2048, TensorDType.Q4_K),
    ];

    // 32768×2048 is 128 MiB even at 16 bits, four times the L3 here, so it measures DRAM; the smollm2
    // LM head is the real decode shape.
    private static readonly (int M, int N, int K, TensorDType Storage)[] GemvShapes =
    [
        (1, 32768, 2048, TensorDType.F32), (1, 32768, 2048, TensorDType.BF16), (1, 32768, 2048, TensorDType.F16),
        (4, 32768, 2048, TensorDType.BF16), (1, 49152, 576, TensorDType.BF16),
        (1, 32768, 2048, TensorDType.Q8_0), (4, 32768, 2048, TensorDType.Q8_0), (1, 49152, 576, TensorDType.Q8_0),
        // llama.cpp's other block types at the same shape (the k-quants need rows of 256), and SmolLM2's 576-wide head
        // in the types a q4_k_m file gives it.
        (1, 32768, 2048, TensorDType.Q4_0), (1, 32768, 2048, TensorDType.Q4_1), (1, 32768, 2048, TensorDType.Q5_0),
        (1, 32768, 2048, TensorDType.Q5_1), (1, 32768, 2048, TensorDType.Q4_K), (1, 32768, 2048, TensorDType.Q5_K),
        (1, 32768, 2048, TensorDType.Q6_K), (4, 32768, 2048, TensorDType.Q4_K), (1, 49152, 576, TensorDType.Q5_0),
    ];

    // Decode's case: a model larger than the caches, read from memory. TinyLlama's gate/up projection in the types its
    // files hold, each timed on 1 GB of copies in turn.
    private static readonly (int M, int N, int K, TensorDType Storage)[] FromMemoryGemvShapes =
    [
        (1, 5632, 2048, TensorDType.F32), (1, 5632, 2048, TensorDType.F16), (1, 5632, 2048, TensorDType.Q8_0),
        (1, 5632, 2048, TensorDType.Q4_K), (1, 5632, 2048, TensorDType.Q6_K), (1, 5632, 2048, TensorDType.Q5_0),
        // Decode steps of several sequences: the Q4_K dot unpacks each weight block once for two x rows.
        (2, 5632, 2048, TensorDType.Q4_K), (4, 5632, 2048, TensorDType.Q4_K),
    ];

    private static readonly (int M, int N, int K, TensorDType Storage)[] QuickGemmShapes =
        [(9, 40, 33, TensorDType.F32), (9, 40, 33, TensorDType.BF16), (9, 40, 256, TensorDType.Q4_K)];

    private static readonly (int M, int N, int K, TensorDType Storage)[] QuickGemvShapes =
        [(1, 64, 48, TensorDType.F32), (1, 64, 48, TensorDType.BF16), (1, 64, 48, TensorDType.F16), (1, 64, 64, TensorDType.Q8_0),
         (1, 64, 64, TensorDType.Q4_0), (1, 64, 256, TensorDType.Q4_K), (1, 64, 256, TensorDType.Q6_K)];

    public static KernelBenchmarkResult Run(KernelBenchmarkOptions options)
    {
        int threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        var timer = new Timer(options.Quick ? 1 : Math.Max(1, options.Repetitions), options.Quick ? 0 : options.MinRepetitionMilliseconds);
        using var pool = new WorkerPool(threads);

        var peak = MeasureFmaPeak(pool, timer, options.Quick);
        // Past the last-level cache (300 MB on the development VM) several times over.
        long bufferBytes = options.Quick ? 1 << 20 : 1L << 30;
        var (read, copy) = MeasureBandwidth(pool, timer, bufferBytes);
        double dispatch = timer.Measure(() => pool.For(threads, new EmptyBody())).Median * 1e6;

        var gemm = new List<GemmMeasurement>();
        foreach (var (m, n, k, storage) in options.Quick ? QuickGemmShapes : GemmShapes)
        {
            var seconds = TimeMultiply(pool, timer, m, n, k, storage, out _);
            double flops = 2.0 * m * n * k / 1e9;
            gemm.Add(new GemmMeasurement(m, n, k, Name(storage), seconds.Median * 1e3,
                flops / seconds.Median, 100 * flops / seconds.Median / peak.Median,
                flops / seconds.Best, 100 * flops / seconds.Best / peak.Best));
        }
        var gemv = new List<GemvMeasurement>();
        var gemvShapes = options.Quick
            ? QuickGemvShapes.Select(s => (s, false)).Append((QuickGemvShapes[^1], true))
            : GemvShapes.Select(s => (s, false)).Concat(FromMemoryGemvShapes.Select(s => (s, true)));
        foreach (var ((m, n, k, storage), fromMemory) in gemvShapes)
        {
            var seconds = TimeMultiply(pool, timer, m, n, k, storage, out var sameBuffer, fromMemory ? bufferBytes : 0);
            if (fromMemory)
                sameBuffer = read;
            // Bytes of the weights as stored: a Q8_0 row is k / 32 blocks of 34 bytes, a Q4_K row k / 256 of 144.
            double gb = storage.ByteCount((long)n * k) / 1e9;
            gemv.Add(new GemvMeasurement(m, n, k, Name(storage), seconds.Median * 1e3,
                gb / seconds.Median, 100 * gb / seconds.Median / read.Median,
                gb / seconds.Best, 100 * gb / seconds.Best / read.Best,
                sameBuffer.Median, 100 * gb / seconds.Best / sameBuffer.Best, fromMemory));
        }
        return new KernelBenchmarkResult(Gemm.BestSimd.ToString(), threads, options.Quick,
            peak.Median, peak.Best, read.Median, read.Best, copy, dispatch, gemm, gemv);
    }

    private static string Name(TensorDType t) => t.ToString().ToLowerInvariant();

    /// <param name="sameBufferRead">GB/s of the vectorised sum over the packed weights (in the padded panels).</param>
    /// <param name="copiesBytes">When not 0, the multiply runs on copies of the matrix in turn, this many bytes of them.</param>
    private static unsafe Timing TimeMultiply(WorkerPool pool, Timer timer, int m, int n, int k, TensorDType storage, out Timing sameBufferRead, long copiesBytes = 0)
    {
        var w = PackedMatrix.Pack(RandomFloats((long)n * k, seed: n + k), n, k, storage);
        var x = RandomFloats((long)m * k, seed: m);
        var y = new float[m * n];
        var copies = new PackedMatrix[Math.Max(1, (int)(copiesBytes / w.ResidentBytes))];
        copies[0] = w;
        for (int i = 1; i < copies.Length; i++)
            copies[i] = w.Copy();
        int next = 0;
        var seconds = timer.Measure(() => Gemm.Multiply(x, m, copies[next++ % copies.Length], y, pool));
        long floats = w.Panels * w.PanelBytes / sizeof(float);
        var sum = new SumBody((float*)w.Panel(0), floats, pool.Threads, new float[pool.Threads]);
        sameBufferRead = timer.Measure(() => pool.For(pool.Threads, sum)).Rate(floats * sizeof(float) / 1e9);
        return seconds;
    }

    private static float[] RandomFloats(long length, int seed)
    {
        var a = GC.AllocateUninitializedArray<float>(checked((int)length));
        uint s = (uint)seed * 2654435761u + 1;
        for (int i = 0; i < a.Length; i++)
        {
            s ^= s << 13; s ^= s >> 17; s ^= s << 5;
            a[i] = (int)s * (1f / int.MaxValue);
        }
        return a;
    }

    /// <summary>GFLOP/s.</summary>
    private static Timing MeasureFmaPeak(WorkerPool pool, Timer timer, bool quick)
    {
        long iterations = quick ? 1_000 : 2_000_000;
        var sink = new float[pool.Threads];
        var seconds = timer.Measure(() => pool.For(pool.Threads, new FmaBody(iterations, sink)));
        int lanes = Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 1;
        return seconds.Rate(pool.Threads * iterations * FmaBody.Chains * lanes * 2.0 / 1e9);
    }

    /// <summary>Read GB/s (median and best) and copy GB/s (median).</summary>
    private static unsafe (Timing Read, double Copy) MeasureBandwidth(WorkerPool pool, Timer timer, long bytes)
    {
        var source = GC.AllocateArray<float>(checked((int)(bytes / sizeof(float))), pinned: true);
        var target = GC.AllocateArray<float>(source.Length, pinned: true);
        source.AsSpan().Fill(1f);
        target.AsSpan().Clear();
        var sums = new float[pool.Threads];
        fixed (float* src = source, dst = target)
        {
            var sum = new SumBody(src, source.Length, pool.Threads, sums);
            var read = timer.Measure(() => pool.For(pool.Threads, sum)).Rate(bytes / 1e9);
            var copy = new CopyBody(src, dst, source.Length, pool.Threads);
            double copied = 2.0 * bytes / 1e9 / timer.Measure(() => pool.For(pool.Threads, copy)).Median;
            return (read, copied);
        }
    }

    /// <summary>Seconds per call (or, after <see cref="Rate"/>, amount per second): median and best.</summary>
    private readonly record struct Timing(double Median, double Best)
    {
        public Timing Rate(double amount) => new(amount / Median, amount / Best);
    }

    /// <summary>Warm-up, then timed repetitions, each repeating the action to a minimum length.</summary>
    private sealed class Timer(int repetitions, double minRepetitionMilliseconds)
    {
        public Timing Measure(Action action)
        {
            // The first calls run tier-0 code; the warm-up lasts long enough for tier-1 to replace it.
            long warmupEnd = Stopwatch.GetTimestamp() + (long)(4 * minRepetitionMilliseconds / 1e3 * Stopwatch.Frequency);
            do
                action();
            while (Stopwatch.GetTimestamp() < warmupEnd);

            long start = Stopwatch.GetTimestamp();
            action();
            double once = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            int callsPerRepetition = Math.Max(1, (int)Math.Ceiling(minRepetitionMilliseconds / Math.Max(once, 1e-4)));

            var seconds = new double[repetitions];
            for (int r = 0; r < repetitions; r++)
            {
                start = Stopwatch.GetTimestamp();
                for (int c = 0; c < callsPerRepetition; c++)
                    action();
                seconds[r] = Stopwatch.GetElapsedTime(start).TotalSeconds / callsPerRepetition;
            }
            Array.Sort(seconds);
            return new Timing(seconds[repetitions / 2], seconds[0]);
        }
    }

    private readonly struct EmptyBody : IForBody
    {
        public void Invoke(int index)
        {
        }
    }

    /// <summary>Independent FMA chains, enough to cover FMA latency × throughput, touching no memory in the loop.</summary>
    private readonly struct FmaBody(long iterations, float[] sink) : IForBody
    {
        public const int Chains = 12;

        public void Invoke(int index)
        {
            float total = Vector512.IsHardwareAccelerated ? Run512() : Vector256.IsHardwareAccelerated ? Run256() : RunScalar();
            sink[index] = total;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private float Run512()
        {
            var m = Vector512.Create(0.999999f);
            var c = Vector512.Create(1e-7f);
            Vector512<float> a0 = Vector512.Create(1f), a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c;
            Vector512<float> a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
            for (long i = 0; i < iterations; i++)
            {
                a0 = Vector512.FusedMultiplyAdd(a0, m, c); a1 = Vector512.FusedMultiplyAdd(a1, m, c);
                a2 = Vector512.FusedMultiplyAdd(a2, m, c); a3 = Vector512.FusedMultiplyAdd(a3, m, c);
                a4 = Vector512.FusedMultiplyAdd(a4, m, c); a5 = Vector512.FusedMultiplyAdd(a5, m, c);
                a6 = Vector512.FusedMultiplyAdd(a6, m, c); a7 = Vector512.FusedMultiplyAdd(a7, m, c);
                a8 = Vector512.FusedMultiplyAdd(a8, m, c); a9 = Vector512.FusedMultiplyAdd(a9, m, c);
                a10 = Vector512.FusedMultiplyAdd(a10, m, c); a11 = Vector512.FusedMultiplyAdd(a11, m, c);
            }
            return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private float Run256()
        {
            var m = Vector256.Create(0.999999f);
            var c = Vector256.Create(1e-7f);
            Vector256<float> a0 = Vector256.Create(1f), a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c;
            Vector256<float> a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
            for (long i = 0; i < iterations; i++)
            {
                a0 = Vector256.FusedMultiplyAdd(a0, m, c); a1 = Vector256.FusedMultiplyAdd(a1, m, c);
                a2 = Vector256.FusedMultiplyAdd(a2, m, c); a3 = Vector256.FusedMultiplyAdd(a3, m, c);
                a4 = Vector256.FusedMultiplyAdd(a4, m, c); a5 = Vector256.FusedMultiplyAdd(a5, m, c);
                a6 = Vector256.FusedMultiplyAdd(a6, m, c); a7 = Vector256.FusedMultiplyAdd(a7, m, c);
                a8 = Vector256.FusedMultiplyAdd(a8, m, c); a9 = Vector256.FusedMultiplyAdd(a9, m, c);
                a10 = Vector256.FusedMultiplyAdd(a10, m, c); a11 = Vector256.FusedMultiplyAdd(a11, m, c);
            }
            return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private float RunScalar()
        {
            Span<float> a = stackalloc float[Chains];
            a.Fill(1f);
            for (long i = 0; i < iterations; i++)
                for (int j = 0; j < Chains; j++)
                    a[j] = MathF.FusedMultiplyAdd(a[j], 0.999999f, 1e-7f);
            float total = 0;
            foreach (float v in a)
                total += v;
            return total;
        }
    }

    /// <summary>Each thread sums its contiguous share of the buffer with four independent vector accumulators.</summary>
    private readonly unsafe struct SumBody(float* data, long length, int parts, float[] sink) : IForBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Invoke(int part)
        {
            long begin = length * part / parts, end = length * (part + 1) / parts;
            float* p = data + begin;
            long count = end - begin, i = 0;
            var s0 = Vector256<float>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
            if (Vector512.IsHardwareAccelerated)
            {
                var t0 = Vector512<float>.Zero; var t1 = t0; var t2 = t0; var t3 = t0;
                for (; i + 64 <= count; i += 64)
                {
                    t0 += Vector512.Load(p + i); t1 += Vector512.Load(p + i + 16);
                    t2 += Vector512.Load(p + i + 32); t3 += Vector512.Load(p + i + 48);
                }
                s0 = (t0 + t1 + t2 + t3).GetLower() + (t0 + t1 + t2 + t3).GetUpper();
            }
            else
            {
                for (; i + 32 <= count; i += 32)
                {
                    s0 += Vector256.Load(p + i); s1 += Vector256.Load(p + i + 8);
                    s2 += Vector256.Load(p + i + 16); s3 += Vector256.Load(p + i + 24);
                }
            }
            float total = Vector256.Sum(s0 + s1 + s2 + s3);
            for (; i < count; i++)
                total += p[i];
            sink[part] = total;
        }
    }

    private readonly unsafe struct CopyBody(float* source, float* target, long length, int parts) : IForBody
    {
        public void Invoke(int part)
        {
            long begin = length * part / parts, end = length * (part + 1) / parts;
            Buffer.MemoryCopy(source + begin, target + begin, (end - begin) * sizeof(float), (end - begin) * sizeof(float));
        }
    }
}
