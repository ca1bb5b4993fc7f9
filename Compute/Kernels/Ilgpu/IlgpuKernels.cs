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
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulShape> _gemmF32, _gemvF32;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape> _gemmF16, _gemvF16, _gemmBF16, _gemvBF16;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulShape> _swiGluGemvF32;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MatMulShape> _swiGluGemvF16, _swiGluGemvBF16;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape> _qkvGemvF32;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape> _qkvGemvF16, _qkvGemvBF16;
    private readonly Dictionary<TensorDType, BlockMatMul> _blockMatMuls = [];
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> _rmsNorm;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, RopeShape> _rope;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, ArrayView<float>, AttentionShape> _attention;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, AttentionShape> _tiledAttention;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, AttentionShape> _splitKeyAttention;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, AttentionShape> _combineSplits;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, AttentionShape> _keyTotals;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _swiGlu, _addBias;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>> _gatherRows, _scatterRows;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>> _appendToCache;

    public IlgpuKernels(Accelerator accelerator)
    {
        _accelerator = accelerator;
        _warpSize = accelerator.WarpSize;
        _gemmF32 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulShape>(
            MatMulKernels.TiledGemm<float, F32Weights>);
        _gemvF32 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulShape>(
            MatMulKernels.WarpGemv<float, F32Weights>);
        _gemmF16 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>(
            MatMulKernels.TiledGemm<ushort, F16Weights>);
        _gemvF16 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>(
            MatMulKernels.WarpGemv<ushort, F16Weights>);
        _gemmBF16 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>(
            MatMulKernels.TiledGemm<ushort, BF16Weights>);
        _gemvBF16 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>(
            MatMulKernels.WarpGemv<ushort, BF16Weights>);
        _swiGluGemvF32 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulShape>(
            MatMulKernels.WarpGemvSwiGlu<float, F32Weights>);
        _swiGluGemvF16 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MatMulShape>(
            MatMulKernels.WarpGemvSwiGlu<ushort, F16Weights>);
        _swiGluGemvBF16 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MatMulShape>(
            MatMulKernels.WarpGemvSwiGlu<ushort, BF16Weights>);
        _qkvGemvF32 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape>(MatMulKernels.WarpGemvQkv<float, F32Weights>);
        _qkvGemvF16 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape>(MatMulKernels.WarpGemvQkv<ushort, F16Weights>);
        _qkvGemvBF16 = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape>(MatMulKernels.WarpGemvQkv<ushort, BF16Weights>);
        _rmsNorm = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(NormKernels.RmsNorm);
        _rope = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, RopeShape>(
            RopeKernels.Rope);
        _attention = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, ArrayView<float>, AttentionShape>(AttentionKernels.Attention);
        _tiledAttention = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, AttentionShape>(AttentionKernels.TiledAttention);
        _splitKeyAttention = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, AttentionShape>(AttentionKernels.SplitKeyAttention);
        _combineSplits = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, AttentionShape>(AttentionKernels.CombineSplits);
        _keyTotals = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, AttentionShape>(
            AttentionKernels.KeyTotals);
        _swiGlu = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.SwiGlu);
        _addBias = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.AddBias);
        _gatherRows = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>>(RowKernels.Gather);
        _appendToCache = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, ArrayView<float>, ArrayView<int>>(RowKernels.AppendToCache);
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

    public void MatMul(ArrayView<float> x, ArrayView<float> weights, ArrayView<float> y, MatMulShape shape)
    {
        using var launch = Launch(MatMulKind(shape), TensorDType.F32);
        if (UseGemv(shape))
            _gemvF32(MatMulKernels.GemvConfig(shape, _warpSize), x, weights, y, shape);
        else
            _gemmF32(MatMulKernels.TiledGemmConfig(shape), x, weights, y, shape);
    }

    /// <param name="storage">F16 or BF16: what the 16-bit weights are.</param>
    public void MatMul(ArrayView<float> x, ArrayView<ushort> weights, TensorDType storage, ArrayView<float> y, MatMulShape shape)
    {
        using var launch = Launch(MatMulKind(shape), storage);
        bool gemv = UseGemv(shape);
        var kernel = storage switch
        {
            TensorDType.F16 => gemv ? _gemvF16 : _gemmF16,
            TensorDType.BF16 => gemv ? _gemvBF16 : _gemmBF16,
            _ => throw new ArgumentOutOfRangeException(nameof(storage), storage, "16-bit weights are F16 or BF16"),
        };
        kernel(gemv ? MatMulKernels.GemvConfig(shape, _warpSize) : MatMulKernels.TiledGemmConfig(shape), x, weights, y, shape);
    }

    /// <summary>
    /// Compiles the GEMM and GEMV on blocks of the quantized type <paramref name="storage"/> unless they are: a model holds
    /// one or two of the eight types, so they are compiled when a matrix of the type is prepared, not all at start.
    /// </summary>
    public void LoadBlockMatMul(TensorDType storage)
    {
        if (!_blockMatMuls.ContainsKey(storage))
            _blockMatMuls[storage] = CompileBlockMatMul(storage);
    }

    /// <param name="blocks">The matrix's rows as llama.cpp blocks of <paramref name="storage"/>, one of the quantized types.</param>
    public void MatMul(ArrayView<float> x, ArrayView<byte> blocks, TensorDType storage, ArrayView<float> y, MatMulShape shape)
    {
        LoadBlockMatMul(storage);
        var kernels = _blockMatMuls[storage];
        using var launch = Launch(MatMulKind(shape), storage);
        if (UseGemv(shape))
            kernels.Gemv(MatMulKernels.GemvConfig(shape, _warpSize), x, blocks, y, shape);
        else
            kernels.Gemm(MatMulKernels.TiledGemmConfig(shape), x, blocks, y, shape);
    }

    private BlockMatMul CompileBlockMatMul(TensorDType storage) => storage switch
    {
        TensorDType.Q8_0 => CompileBlockMatMul<Q8_0Weights>(),
        TensorDType.Q4_0 => CompileBlockMatMul<Q4_0Weights>(),
        TensorDType.Q4_1 => CompileBlockMatMul<Q4_1Weights>(),
        TensorDType.Q5_0 => CompileBlockMatMul<Q5_0Weights>(),
        TensorDType.Q5_1 => CompileBlockMatMul<Q5_1Weights>(),
        TensorDType.Q4_K => CompileBlockMatMul<Q4_KWeights>(),
        TensorDType.Q5_K => CompileBlockMatMul<Q5_KWeights>(),
        TensorDType.Q6_K => CompileBlockMatMul<Q6_KWeights>(),
        _ => throw new ArgumentOutOfRangeException(nameof(storage), storage, "block weights are one of the quantized types"),
    };

    private BlockMatMul CompileBlockMatMul<TFormat>()
        where TFormat : struct, IWeightFormat<byte> => new(
        _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<byte>, ArrayView<float>, MatMulShape>(MatMulKernels.TiledGemm<byte, TFormat>),
        _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<byte>, ArrayView<float>, MatMulShape>(MatMulKernels.WarpGemv<byte, TFormat>),
        _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, MatMulShape>(
            MatMulKernels.WarpGemvSwiGlu<byte, TFormat>),
        _accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape>(MatMulKernels.WarpGemvQkv<byte, TFormat>));

    /// <summary>The tiled GEMM, the warp GEMV, the gated GEMV and the q/k/v GEMV of one quantized type.</summary>
    private sealed record BlockMatMul(
        Action<KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<float>, MatMulShape> Gemm,
        Action<KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<float>, MatMulShape> Gemv,
        Action<KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, MatMulShape> SwiGluGemv,
        Action<KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape> QkvGemv);

    /// <summary>Whether <paramref name="shape"/> takes the GEMV kernels (few rows) rather than the tiled GEMM.</summary>
    public static bool UseGemv(MatMulShape shape) => shape.M <= MatMulKernels.GemvMaxRows;

    private static string MatMulKind(MatMulShape shape) => (UseGemv(shape) ? "gemv" : "gemm") + (shape.Output == MatMulOutput.Add ? " add" : "");

    /// <summary>q, k and v's products of a few rows in one launch; f32 weights.</summary>
    public void QkvGemv(ArrayView<float> x, ArrayView<float> wq, ArrayView<float> wk, ArrayView<float> wv,
        ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, QkvShape shape)
    {
        using var launch = Launch("qkv gemv", TensorDType.F32);
        _qkvGemvF32(MatMulKernels.QkvGemvConfig(shape, _warpSize), x, wq, wk, wv, q, k, v, shape);
    }

    /// <summary>q, k and v's products of a few rows in one launch; F16 or BF16 weights.</summary>
    public void QkvGemv(ArrayView<float> x, ArrayView<ushort> wq, ArrayView<ushort> wk, ArrayView<ushort> wv, TensorDType storage,
        ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, QkvShape shape)
    {
        var kernel = storage switch
        {
            TensorDType.F16 => _qkvGemvF16,
            TensorDType.BF16 => _qkvGemvBF16,
            _ => throw new ArgumentOutOfRangeException(nameof(storage), storage, "16-bit weights are F16 or BF16"),
        };
        using var launch = Launch("qkv gemv", storage);
        kernel(MatMulKernels.QkvGemvConfig(shape, _warpSize), x, wq, wk, wv, q, k, v, shape);
    }

    /// <summary>q, k and v's products of a few rows in one launch; blocks of a quantized type.</summary>
    public void QkvGemv(ArrayView<float> x, ArrayView<byte> wq, ArrayView<byte> wk, ArrayView<byte> wv, TensorDType storage,
        ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, QkvShape shape)
    {
        LoadBlockMatMul(storage);
        using var launch = Launch("qkv gemv", storage);
        _blockMatMuls[storage].QkvGemv(MatMulKernels.QkvGemvConfig(shape, _warpSize), x, wq, wk, wv, q, k, v, shape);
    }

    /// <summary>y = silu(x · gateᵀ) ⊙ (x · upᵀ) in one launch, for shapes <see cref="UseGemv"/> accepts; f32 weights.</summary>
    public void SwiGluGemv(ArrayView<float> x, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> y, MatMulShape shape)
    {
        using var launch = Launch("swiglu gemv", TensorDType.F32);
        _swiGluGemvF32(MatMulKernels.GemvConfig(shape, _warpSize), x, gate, up, y, shape);
    }

    /// <summary><see cref="SwiGluGemv(ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, MatMulShape)"/> on F16 or BF16 weights.</summary>
    public void SwiGluGemv(ArrayView<float> x, ArrayView<ushort> gate, ArrayView<ushort> up, TensorDType storage, ArrayView<float> y, MatMulShape shape)
    {
        var kernel = storage switch
        {
            TensorDType.F16 => _swiGluGemvF16,
            TensorDType.BF16 => _swiGluGemvBF16,
            _ => throw new ArgumentOutOfRangeException(nameof(storage), storage, "16-bit weights are F16 or BF16"),
        };
        using var launch = Launch("swiglu gemv", storage);
        kernel(MatMulKernels.GemvConfig(shape, _warpSize), x, gate, up, y, shape);
    }

    /// <summary><see cref="SwiGluGemv(ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, MatMulShape)"/> on blocks of a quantized type.</summary>
    public void SwiGluGemv(ArrayView<float> x, ArrayView<byte> gate, ArrayView<byte> up, TensorDType storage, ArrayView<float> y, MatMulShape shape)
    {
        LoadBlockMatMul(storage);
        using var launch = Launch("swiglu gemv", storage);
        _blockMatMuls[storage].SwiGluGemv(MatMulKernels.GemvConfig(shape, _warpSize), x, gate, up, y, shape);
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
    /// Attention for a few rows over a long cache, its keys split over many warps (flash-decoding): two launches, the
    /// splits then their combination. Only for shapes <see cref="SplitsKeys"/> accepts; <paramref name="partials"/>
    /// holds <see cref="SplitPartials"/> floats.
    /// </summary>
    public void SplitKeyAttention(ArrayView<float> q, ArrayView<int> queryPositions, ArrayView<float> keys, ArrayView<float> values,
        ArrayView<int> keyPositions, ArrayView<float> partials, ArrayView<float> output, AttentionShape shape)
    {
        using (Launch("split-key attention"))
            _splitKeyAttention(AttentionKernels.SplitKeyAttentionConfig(shape), q, queryPositions, keys, values, keyPositions, partials, shape);
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

    /// <summary>Keys, values and positions into a KV cache's spans (as long as the keys, values, positions) in one launch.</summary>
    public void AppendToCache(ArrayView<float> keys, ArrayView<float> values, ArrayView<int> positions,
        ArrayView<float> cacheKeys, ArrayView<float> cacheValues, ArrayView<int> cachePositions)
    {
        using var launch = Launch("cache append");
        _appendToCache(keys.IntLength, keys, values, positions, cacheKeys, cacheValues, cachePositions);
    }

    public void ScatterRows(ArrayView<float> source, ArrayView<int> rows, int width, ArrayView<float> destination)
    {
        using var launch = Launch("scatter rows");
        _scatterRows(rows.IntLength * width, source, rows, width, destination);
    }
}
