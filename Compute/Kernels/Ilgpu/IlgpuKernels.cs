using FtpCluster.Compute.Devices;
using FtpCluster.Compute.Models;
using ILGPU;
using ILGPU.Runtime;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>Every kernel of the ILGPU backend, compiled once for one accelerator and launched on its default stream.</summary>
internal sealed class IlgpuKernels
{
    private readonly Accelerator _accelerator;
    private readonly int _warpSize;
    private readonly Dictionary<TensorDType, MatrixKernels> _matrixKernels = [];
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> _rmsNorm;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, RopeShape> _rope;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, ArrayView<float>, AttentionShape> _attention;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, AttentionShape> _tiledAttention;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, CacheGroup, ArrayView<float>, AttentionShape> _splitKeyAttention;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, AttentionShape> _combineSplits;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, AttentionShape> _keyTotals;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _swiGlu, _addBias;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>> _gatherRows, _scatterRows;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, CacheGroup, int> _appendToCaches;

    public IlgpuKernels(Accelerator accelerator)
    {
        _accelerator = accelerator;
        _warpSize = accelerator.WarpSize;
        _rmsNorm = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(NormKernels.RmsNorm);
        _rope = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, RopeShape>(
            RopeKernels.Rope);
        _attention = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, ArrayView<float>, AttentionShape>(AttentionKernels.Attention);
        _tiledAttention = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, AttentionShape>(AttentionKernels.TiledAttention);
        _splitKeyAttention = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, CacheGroup, ArrayView<float>, AttentionShape>(
            AttentionKernels.SplitKeyAttention);
        _combineSplits = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, AttentionShape>(AttentionKernels.CombineSplits);
        _keyTotals = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, AttentionShape>(
            AttentionKernels.KeyTotals);
        _swiGlu = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.SwiGlu);
        _addBias = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.AddBias);
        _gatherRows = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>>(RowKernels.Gather);
        _appendToCaches = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, CacheGroup, int>(
            RowKernels.AppendToCaches);
        _scatterRows = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>>(RowKernels.Scatter);
    }

    /// <summary>Operations put on the stream so far: kernels and copies, each with its own launch overhead.</summary>
    public long Launches { get; private set; }

    /// <summary>The operations timed since <see cref="StartProfile"/>, or null when not profiling.</summary>
    private List<TimedOperation>? _profiled;

    /// <summary>
    /// Starts timing every operation on the stream, between profiling markers recorded before and after it (the
    /// accelerator must have been created with profiling on).
    /// </summary>
    public void StartProfile() => _profiled = [];

    /// <summary>Waits for the stream, then gives the device time of each operation since <see cref="StartProfile"/>, by kind.</summary>
    public DeviceProfile StopProfile()
    {
        var profiled = _profiled ?? throw new InvalidOperationException("no profile was started");
        _profiled = null;
        _accelerator.Synchronize();
        var kinds = new Dictionary<string, (long Count, double Seconds)>();
        foreach (var operation in profiled)
        {
            double seconds = operation.End.MeasureFrom(operation.Begin).TotalSeconds;
            kinds[operation.Kind] = kinds.TryGetValue(operation.Kind, out var sum) ? (sum.Count + 1, sum.Seconds + seconds) : (1, seconds);
            operation.Begin.Dispose();
            operation.End.Dispose();
        }
        return new DeviceProfile([.. kinds.Select(k => new DeviceProfile.Operation(k.Key, k.Value.Count, k.Value.Seconds))
            .OrderByDescending(o => o.Seconds)]);
    }

    /// <summary>Counts one operation and, when profiling, times it: dispose the scope once the operation is on the stream.</summary>
    private LaunchScope Launch(string kind, TensorDType? storage = null)
    {
        Launches++;
        return _profiled is null ? default : new LaunchScope(this, kind, storage, _accelerator.AddProfilingMarker());
    }

    private readonly record struct TimedOperation(string Kind, ProfilingMarker Begin, ProfilingMarker End);

    private readonly struct LaunchScope(IlgpuKernels owner, string kind, TensorDType? storage, ProfilingMarker? begin) : IDisposable
    {
        public void Dispose()
        {
            if (begin is null)
                return;
            string name = storage is { } type ? $"{kind} {type.ToString().ToLowerInvariant()}" : kind;
            owner._profiled!.Add(new TimedOperation(name, begin, owner._accelerator.AddProfilingMarker()));
        }
    }

    public void Copy<T>(ArrayView<T> source, ArrayView<T> destination)
        where T : unmanaged
    {
        using var launch = Launch("copy");
        source.CopyTo(destination);
    }

    /// <summary>
    /// Compiles the matrix kernels of <paramref name="storage"/> unless they are: a model holds one to three of the
    /// eleven storage types, so they are compiled when a matrix of the type is prepared, not all at start.
    /// </summary>
    public MatrixKernels LoadMatrixKernels(TensorDType storage)
    {
        if (!_matrixKernels.TryGetValue(storage, out var kernels))
            _matrixKernels[storage] = kernels = MatrixKernels.Compile(_accelerator, storage);
        return kernels;
    }

    /// <summary>y = x · wᵀ (or y += x · wᵀ), by the kernel for its row count (<see cref="MatMulKernels.For"/>).</summary>
    /// <param name="weights">The bytes of the matrix in its storage type <paramref name="storage"/>: floats, 16-bit patterns or llama.cpp blocks.</param>
    public void MatMul(ArrayView<float> x, ArrayView<byte> weights, TensorDType storage, ArrayView<float> y, MatMulShape shape)
    {
        var kernels = LoadMatrixKernels(storage);
        var kernel = MatMulKernels.For(shape.M);
        using var launch = Launch(MatMulKind(kernel, shape.Output), storage);
        kernels.MatMul(kernel, MatMulKernels.Config(kernel, shape, _warpSize), x, weights, y, shape);
    }

    /// <summary>Whether a product of <paramref name="rows"/> rows takes the GEMV kernels rather than a GEMM.</summary>
    public static bool UseGemv(int rows) => MatMulKernels.For(rows) == MatMulKernel.Gemv;

    private static string MatMulKind(MatMulKernel kernel, MatMulOutput output) => kernel switch
    {
        MatMulKernel.Gemv => "gemv",
        MatMulKernel.TiledGemm => "gemm",
        _ => "blocked gemm",
    } + (output == MatMulOutput.Add ? " add" : "");

    /// <summary>
    /// q, k and v's products of a few rows in one launch; the three matrices in one storage type. x's rows are
    /// RMS-normalized first by <paramref name="norm"/> (eps in the shape) unless it is empty.
    /// </summary>
    public void QkvGemv(ArrayView<float> x, ArrayView<byte> wq, ArrayView<byte> wk, ArrayView<byte> wv, TensorDType storage,
        ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, QkvShape shape, ArrayView<float> norm)
    {
        var kernels = LoadMatrixKernels(storage);
        using var launch = Launch(norm.Length > 0 ? "rmsnorm qkv gemv" : "qkv gemv", storage);
        kernels.QkvGemv(MatMulKernels.QkvGemvConfig(shape, _warpSize), x, wq, wk, wv, q, k, v, shape, norm);
    }

    /// <summary>
    /// y = silu(x · gateᵀ) ⊙ (x · upᵀ) in one launch, for row counts <see cref="UseGemv"/> accepts; both matrices in one
    /// storage type. x's rows are RMS-normalized first by <paramref name="norm"/> (eps in the shape) unless it is empty.
    /// </summary>
    public void SwiGluGemv(ArrayView<float> x, ArrayView<byte> gate, ArrayView<byte> up, TensorDType storage, ArrayView<float> y,
        MatMulShape shape, ArrayView<float> norm)
    {
        var kernels = LoadMatrixKernels(storage);
        using var launch = Launch(norm.Length > 0 ? "rmsnorm swiglu gemv" : "swiglu gemv", storage);
        kernels.SwiGluGemv(MatMulKernels.GemvConfig(shape, _warpSize), x, gate, up, y, shape, norm);
    }

    public void RmsNorm(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> y, int rows, int dim, float eps)
    {
        using var launch = Launch("rmsnorm");
        _rmsNorm(NormKernels.RmsNormConfig(rows), x, weight, y, dim, eps);
    }

    public void Rope(ArrayView<float> q, ArrayView<float> k, ArrayView<int> positions, ArrayView<float> cos, ArrayView<float> sin, RopeShape shape)
    {
        using var launch = Launch("rope");
        _rope(positions.IntLength * (shape.Heads + shape.KvHeads) * (shape.HeadDim / 2), q, k, positions, cos, sin, shape);
    }

    public void Attention(ArrayView<float> q, ArrayView<int> queryPositions, ArrayView<float> keys, ArrayView<float> values,
        ArrayView<int> keyPositions, ArrayView<float> output, ArrayView<float> probabilities, AttentionShape shape)
    {
        using var launch = Launch("attention");
        _attention(AttentionKernels.AttentionConfig(shape, _warpSize), q, queryPositions, keys, values, keyPositions,
            output, probabilities, shape);
    }

    public bool FitsTiledAttention(AttentionShape shape) => AttentionKernels.FitsTiledAttention(shape, _warpSize);

    /// <summary>Attention without the weights kept: no per-key totals. Only for shapes <see cref="FitsTiledAttention"/> accepts.</summary>
    public void TiledAttention(ArrayView<float> q, ArrayView<int> queryPositions, ArrayView<float> keys, ArrayView<float> values,
        ArrayView<int> keyPositions, ArrayView<float> output, AttentionShape shape)
    {
        using var launch = Launch("tiled attention");
        _tiledAttention(AttentionKernels.TiledAttentionConfig(shape), q, queryPositions, keys, values, keyPositions, output, shape);
    }

    public bool SplitsKeys(AttentionShape shape) => AttentionKernels.SplitsKeys(shape, _warpSize);

    /// <summary>Floats of partial results <see cref="SplitKeyAttention"/> needs for <paramref name="shape"/>.</summary>
    public static long SplitPartials(AttentionShape shape) =>
        (long)shape.Queries * shape.Heads * AttentionKernels.Splits(shape) * AttentionKernels.PartialWidth(shape);

    /// <summary>
    /// Attention for a few rows of each of up to eight sequences, each over its own cache, the keys split over many
    /// warps (flash-decoding): two launches, the splits then their combination, however many the sequences. The shape's
    /// queries are the group's rows, its keys the most any cache holds; only for shapes <see cref="SplitsKeys"/> accepts
    /// or groups of several sequences, whose rows are each fewer than a query tile. <paramref name="partials"/> holds
    /// <see cref="SplitPartials"/> floats.
    /// </summary>
    public void SplitKeyAttention(ArrayView<float> q, ArrayView<int> queryPositions, CacheGroup caches,
        ArrayView<float> partials, ArrayView<float> output, AttentionShape shape)
    {
        using (Launch("split-key attention"))
            _splitKeyAttention(AttentionKernels.SplitKeyAttentionConfig(shape), q, queryPositions, caches, partials, shape);
        using (Launch("combine splits"))
            _combineSplits(AttentionKernels.CombineSplitsConfig(shape), partials, output, shape);
    }

    public void AddKeyTotals(ArrayView<float> probabilities, ArrayView<float> totals, AttentionShape shape)
    {
        using var launch = Launch("key totals");
        _keyTotals(shape.Keys, probabilities, totals, shape);
    }

    public void SwiGlu(ArrayView<float> gate, ArrayView<float> up)
    {
        using var launch = Launch("swiglu");
        _swiGlu(gate.IntLength, gate, up);
    }

    public void AddBias(ArrayView<float> x, ArrayView<float> bias)
    {
        using var launch = Launch("add bias");
        _addBias(x.IntLength, x, bias);
    }

    public void GatherRows(ArrayView<float> source, ArrayView<int> rows, int width, ArrayView<float> destination)
    {
        using var launch = Launch("gather rows");
        _gatherRows(rows.IntLength * width, source, rows, width, destination);
    }

    /// <summary>
    /// The group's rows of keys and values ([rows, <paramref name="width"/>], from the group's first row) and their
    /// positions into each sequence's cache room, in one launch.
    /// </summary>
    public void AppendToCaches(ArrayView<float> keys, ArrayView<float> values, ArrayView<int> positions, CacheGroup caches, int width)
    {
        using var launch = Launch("cache append");
        _appendToCaches(caches.Rows * width, keys, values, positions, caches, width);
    }

    public void ScatterRows(ArrayView<float> source, ArrayView<int> rows, int width, ArrayView<float> destination)
    {
        using var launch = Launch("scatter rows");
        _scatterRows(rows.IntLength * width, source, rows, width, destination);
    }
}
