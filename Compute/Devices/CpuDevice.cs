using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using FtpCluster.Compute.Kernels.Cpu;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Devices;

/// <summary>
/// The CPU backend: packed SIMD GEMM/GEMV for the matrices, TensorPrimitives for the rest. Its "device
/// memory" is host memory, so uploads and downloads are plain copies (counted all the same).
/// </summary>
public sealed class CpuDevice : IComputeDevice
{
    private readonly WorkerPool _pool;
    private readonly TransferCounter _transfers = new();

    public CpuDevice(int threads = 0)
    {
        _pool = new WorkerPool(threads > 0 ? threads : Environment.ProcessorCount);
        string simd = Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "AVX2" : "scalar";
        Description = $"cpu: {_pool.Threads} threads, {simd}";
    }

    public string Description { get; }

    internal WorkerPool Pool => _pool;

    public DeviceTransfers Transfers => _transfers.Current;

    public IDeviceMatrix PrepareMatrix(WeightTensor weight, TensorDType? storage = null) =>
        new CpuMatrix(PackedMatrix.Pack(weight, storage));

    public DeviceBuffer<T> Allocate<T>(long length)
        where T : unmanaged => HostBuffer<T>.Allocate(this, length);

    public void Upload<T>(ReadOnlySpan<T> source, DeviceSpan<T> destination)
        where T : unmanaged
    {
        source.CopyTo(Host(destination));
        _transfers.Upload(MemoryMarshal.AsBytes(source).Length);
    }

    public void Download<T>(DeviceSpan<T> source, Span<T> destination)
        where T : unmanaged
    {
        Host(source).CopyTo(destination);
        _transfers.Download(MemoryMarshal.AsBytes(Host(source)).Length);
    }

    public void Copy<T>(DeviceSpan<T> source, DeviceSpan<T> destination)
        where T : unmanaged => Host(source).CopyTo(Host(destination));

    public void AppendToCaches(DeviceSpan<float> keys, DeviceSpan<float> values, DeviceSpan<int> positions, IReadOnlyList<SequenceCache> destinations)
    {
        foreach (var destination in destinations.Where(d => d.Rows > 0))
        {
            int width = destination.Keys.Length / destination.Rows;
            Copy(keys.Slice(destination.FirstRow * width, destination.Keys.Length), destination.Keys);
            Copy(values.Slice(destination.FirstRow * width, destination.Values.Length), destination.Values);
            Copy(positions.Slice(destination.FirstRow, destination.Rows), destination.Positions);
        }
    }

    /// <summary>The host memory behind a span of one of this device's buffers.</summary>
    internal Span<T> Host<T>(DeviceSpan<T> span)
        where T : unmanaged =>
        span.Buffer is HostBuffer<T> host && host.Owner == this
            ? host.Elements(span.Offset, span.Length)
            : throw new ArgumentException($"a {span.Buffer.GetType().Name} of {span.Buffer.Owner.Description} is not memory of this CPU device");

    public void MatMul(DeviceSpan<float> x, int m, IDeviceMatrix w, DeviceSpan<float> y) =>
        MatMul(Host(x), m, w, Host(y));

    /// <summary><see cref="MatMul(DeviceSpan{float}, int, IDeviceMatrix, DeviceSpan{float})"/> on host spans: this device's memory is host memory.</summary>
    public void MatMul(ReadOnlySpan<float> x, int m, IDeviceMatrix w, Span<float> y) =>
        Gemm.Multiply(x, m, ((CpuMatrix)w).Packed, y, _pool);

    public void RmsNorm(DeviceSpan<float> x, DeviceSpan<float> weight, float eps, DeviceSpan<float> y) =>
        RmsNorm(Host(x), Host(weight), eps, Host(y));

    private static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
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

    public void Rope(DeviceSpan<float> q, int heads, DeviceSpan<float> k, int kvHeads, DeviceSpan<int> positions, int maxPosition, RopeTable table)
    {
        Rope(Host(q), heads, Host(positions), table);
        if (kvHeads > 0)
            Rope(Host(k), kvHeads, Host(positions), table);
    }

    private static void Rope(Span<float> x, int heads, ReadOnlySpan<int> positions, RopeTable table)
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

    public void Attention(DeviceSpan<float> q, DeviceSpan<int> queryPositions,
        DeviceSpan<float> keys, DeviceSpan<float> values, DeviceSpan<int> keyPositions,
        int heads, int kvHeads, int headDim, DeviceSpan<float> output, DeviceSpan<float> keyAttention) =>
        Attention(Host(q), Host(queryPositions), Host(keys), Host(values), Host(keyPositions),
            heads, kvHeads, headDim, Host(output), keyAttention.IsEmpty ? Span<float>.Empty : Host(keyAttention));

    public void Attention(DeviceSpan<float> q, DeviceSpan<int> queryPositions, IReadOnlyList<SequenceCache> sequences,
        int heads, int kvHeads, int headDim, DeviceSpan<float> output)
    {
        int width = heads * headDim;
        foreach (var s in sequences)
            Attention(q.Slice(s.FirstRow * width, s.Rows * width), queryPositions.Slice(s.FirstRow, s.Rows), s.Keys, s.Values, s.Positions,
                heads, kvHeads, headDim, output.Slice(s.FirstRow * width, s.Rows * width), default);
    }

    /// <summary><see cref="Attention(DeviceSpan{float}, DeviceSpan{int}, DeviceSpan{float}, DeviceSpan{float}, DeviceSpan{int}, int, int, int, DeviceSpan{float}, DeviceSpan{float})"/> on host spans.</summary>
    public void Attention(ReadOnlySpan<float> q, ReadOnlySpan<int> queryPositions,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<int> keyPositions,
        int heads, int kvHeads, int headDim, Span<float> output, Span<float> keyAttention) =>
        Kernels.Cpu.Attention.Run(q, queryPositions, keys, values, keyPositions, heads, kvHeads, headDim, output, keyAttention, _pool);

    public void QkvMatMul(DeviceSpan<float> x, int m, IDeviceMatrix wq, DeviceSpan<float> q, IDeviceMatrix wk, DeviceSpan<float> k,
        IDeviceMatrix wv, DeviceSpan<float> v, RowNorm? norm = null)
    {
        using var input = new InputRows(this, x, m * wq.Cols, norm);
        MatMul(input.Rows, m, wq, Host(q));
        MatMul(input.Rows, m, wk, Host(k));
        MatMul(input.Rows, m, wv, Host(v));
    }

    /// <summary>A product's input rows: x itself, or x RMS-normalized into rented memory when a norm is given.</summary>
    private readonly ref struct InputRows
    {
        private readonly float[]? _normalized;

        public InputRows(CpuDevice device, DeviceSpan<float> x, int length, RowNorm? norm)
        {
            var rows = device.Host(x)[..length];
            if (norm is not { } n)
            {
                Rows = rows;
                return;
            }
            _normalized = ArrayPool<float>.Shared.Rent(length);
            RmsNorm(rows, device.Host(n.Weight), n.Eps, _normalized.AsSpan(0, length));
            Rows = _normalized.AsSpan(0, length);
        }

        public ReadOnlySpan<float> Rows { get; }

        public void Dispose()
        {
            if (_normalized is not null) ArrayPool<float>.Shared.Return(_normalized);
        }
    }

    public void MatMulAdd(DeviceSpan<float> x, int m, IDeviceMatrix w, DeviceSpan<float> y)
    {
        var sums = Host(y)[..(m * w.Rows)];
        var product = ArrayPool<float>.Shared.Rent(sums.Length);
        try
        {
            MatMul(Host(x), m, w, product);
            TensorPrimitives.Add(sums, product.AsSpan(0, sums.Length), sums);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(product);
        }
    }

    public void SwiGluMatMul(DeviceSpan<float> x, int m, IDeviceMatrix gate, IDeviceMatrix up, DeviceSpan<float> y, RowNorm? norm = null)
    {
        if (up.Rows != gate.Rows || up.Cols != gate.Cols)
            throw new ArgumentException($"SwiGLU: gate [{gate.Rows}, {gate.Cols}] and up [{up.Rows}, {up.Cols}] differ in shape");
        var gated = Host(y)[..(m * gate.Rows)];
        var upProduct = ArrayPool<float>.Shared.Rent(gated.Length);
        using var input = new InputRows(this, x, m * gate.Cols, norm);
        try
        {
            MatMul(input.Rows, m, gate, gated);
            MatMul(input.Rows, m, up, upProduct);
            SwiGlu(gated, upProduct.AsSpan(0, gated.Length));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(upProduct);
        }
    }

    /// <summary>gate = silu(gate) · up.</summary>
    private static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        Span<float> sigmoid = stackalloc float[1024];
        for (int start = 0; start < gate.Length; start += sigmoid.Length)
        {
            var chunk = gate.Slice(start, Math.Min(sigmoid.Length, gate.Length - start));
            var sg = sigmoid.Slice(0, chunk.Length);
            TensorPrimitives.Sigmoid(chunk, sg);
            TensorPrimitives.Multiply(chunk, sg, chunk);
            TensorPrimitives.Multiply(chunk, up.Slice(start, chunk.Length), chunk);
        }
    }

    public void AddBias(DeviceSpan<float> x, DeviceSpan<float> bias)
    {
        var xs = Host(x);
        var b = Host(bias);
        for (int r = 0; r < xs.Length / b.Length; r++)
        {
            var row = xs.Slice(r * b.Length, b.Length);
            TensorPrimitives.Add(row, b, row);
        }
    }

    public void GatherRows(DeviceSpan<float> source, DeviceSpan<int> rows, int width, DeviceSpan<float> destination)
    {
        var from = Host(source);
        var to = Host(destination);
        var indices = Host(rows);
        for (int i = 0; i < indices.Length; i++)
            from.Slice(indices[i] * width, width).CopyTo(to.Slice(i * width, width));
    }

    public void ScatterRows(DeviceSpan<float> source, DeviceSpan<int> rows, int width, DeviceSpan<float> destination)
    {
        var from = Host(source);
        var to = Host(destination);
        var indices = Host(rows);
        for (int i = 0; i < indices.Length; i++)
            from.Slice(i * width, width).CopyTo(to.Slice(indices[i] * width, width));
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

/// <summary>The CPU device's memory: a host byte array, read as <typeparamref name="T"/> (bytes, so that <see cref="Reinterpret{TOther}"/> can share it).</summary>
internal sealed class HostBuffer<T> : DeviceBuffer<T>
    where T : unmanaged
{
    private readonly byte[] _bytes;

    private HostBuffer(IComputeDevice owner, byte[] bytes)
        : base(owner, bytes.LongLength / System.Runtime.CompilerServices.Unsafe.SizeOf<T>())
    {
        _bytes = bytes;
    }

    public static HostBuffer<T> Allocate(IComputeDevice owner, long length)
    {
        long bytes = length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (length < 0 || bytes > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(length), $"a CPU buffer of {length} {typeof(T).Name} elements ({bytes} bytes) is over the {Array.MaxLength} bytes an array holds");
        return new HostBuffer<T>(owner, GC.AllocateUninitializedArray<byte>((int)bytes));
    }

    public Span<T> Elements(long offset, int length)
    {
        int size = System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        return MemoryMarshal.Cast<byte, T>(_bytes.AsSpan((int)(offset * size), length * size));
    }

    public override DeviceBuffer<TOther> Reinterpret<TOther>() => new HostBuffer<TOther>(Owner, _bytes);

    protected override void Release()
    {
    }
}
