using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Devices;

/// <summary>The CPU backend: packed SIMD GEMM/GEMV for the matrices, TensorPrimitives for the rest.</summary>
public sealed class CpuDevice : IComputeDevice
{
    private readonly WorkerPool _pool;

    public CpuDevice(int threads = 0)
    {
        _pool = new WorkerPool(threads > 0 ? threads : Environment.ProcessorCount);
        string simd = Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "AVX2" : "scalar";
        Description = $"cpu: {_pool.Threads} threads, {simd}";
    }

    public string Description { get; }

    internal WorkerPool Pool => _pool;

    public IDeviceMatrix PrepareMatrix(WeightTensor weight, TensorDType? storage = null) =>
        new CpuMatrix(PackedMatrix.Pack(weight, storage));

    public void MatMul(ReadOnlySpan<float> x, int m, IDeviceMatrix w, Span<float> y) =>
        Gemm.Multiply(x, m, ((CpuMatrix)w).Packed, y, _pool);

    public void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        int dim = weight.Length;
        for (int r = 0; r < x.Length / dim; r++)
        {
            var xr = x.Slice(r * dim, dim);
            var yr = y.Slice(r * dim, dim);
            float meanSquare = TensorPrimitives.SumOfSquares(xr) / dim;
            TensorPrimitives.Multiply(xr, 1f / MathF.Sqrt(meanSquare + eps), yr);
            TensorPrimitives.Multiply(yr, weight, yr);
        }
    }

    public void Rope(Span<float> x, int heads, ReadOnlySpan<int> positions, RopeTable table)
    {
        int headDim = table.HeadDim, half = headDim / 2, width = heads * headDim;
        var inverseFrequencies = table.InverseFrequencies;
        Span<float> cos = stackalloc float[half];
        Span<float> sin = stackalloc float[half];
        for (int r = 0; r < positions.Length; r++)
        {
            for (int i = 0; i < half; i++)
            {
                float angle = positions[r] * inverseFrequencies[i];
                (sin[i], cos[i]) = MathF.SinCos(angle);
            }
            for (int h = 0; h < heads; h++)
            {
                var head = x.Slice(r * width + h * headDim, headDim);
                for (int i = 0; i < half; i++)
                {
                    // The two layouts rotate the same pairs of a head, stored in different places.
                    int a = table.Layout == RopeLayout.AdjacentPairs ? 2 * i : i;
                    int b = table.Layout == RopeLayout.AdjacentPairs ? 2 * i + 1 : i + half;
                    float x0 = head[a], x1 = head[b];
                    head[a] = x0 * cos[i] - x1 * sin[i];
                    head[b] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }

    public void Attention(ReadOnlySpan<float> q, ReadOnlySpan<int> queryPositions,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<int> keyPositions,
        int heads, int kvHeads, int headDim, Span<float> output, Span<float> keyAttention) =>
        Kernels.Cpu.Attention.Run(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, output, keyAttention, _pool);

    public void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        Span<float> sigmoid = stackalloc float[1024];
        for (int start = 0; start < gate.Length; start += sigmoid.Length)
        {
            var g = gate.Slice(start, Math.Min(sigmoid.Length, gate.Length - start));
            var sg = sigmoid.Slice(0, g.Length);
            TensorPrimitives.Sigmoid(g, sg);
            TensorPrimitives.Multiply(g, sg, g);
            TensorPrimitives.Multiply(g, up.Slice(start, g.Length), g);
        }
    }

    public void Add(Span<float> x, ReadOnlySpan<float> y) => TensorPrimitives.Add(x, y, x);

    public void AddBias(Span<float> x, ReadOnlySpan<float> bias)
    {
        for (int r = 0; r < x.Length / bias.Length; r++)
        {
            var row = x.Slice(r * bias.Length, bias.Length);
            TensorPrimitives.Add(row, bias, row);
        }
    }

    public void Dispose() => _pool.Dispose();

    private sealed class CpuMatrix(PackedMatrix packed) : IDeviceMatrix
    {
        public PackedMatrix Packed { get; } = packed;
        public int Rows => Packed.Rows;
        public int Cols => Packed.Cols;
        public TensorDType StorageType => Packed.StorageType;
        public long ResidentBytes => Packed.ResidentBytes;

        public void Dispose()
        {
        }
    }
}
