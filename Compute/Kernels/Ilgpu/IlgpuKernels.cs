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
    private readonly Dictionary<TensorDType, BlockMatMul> _blockMatMuls = [];
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> _rmsNorm;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, RopeShape> _rope;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, ArrayView<float>, AttentionShape> _attention;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
        ArrayView<float>, AttentionShape> _tiledAttention;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, AttentionShape> _keyTotals;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _swiGlu, _addBias;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>> _gatherRows, _scatterRows;

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
        _rmsNorm = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(NormKernels.RmsNorm);
        _rope = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, RopeShape>(
            RopeKernels.Rope);
        _attention = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, ArrayView<float>, AttentionShape>(AttentionKernels.Attention);
        _tiledAttention = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, AttentionShape>(AttentionKernels.TiledAttention);
        _keyTotals = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, AttentionShape>(
            AttentionKernels.KeyTotals);
        _swiGlu = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.SwiGlu);
        _addBias = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.AddBias);
        _gatherRows = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>>(RowKernels.Gather);
        _scatterRows = accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>>(RowKernels.Scatter);
    }

    /// <summary>Kernels launched so far (each a separate piece of work on the stream, with its launch overhead).</summary>
    public long Launches { get; private set; }

    public void MatMul(ArrayView<float> x, ArrayView<float> weights, ArrayView<float> y, MatMulShape shape)
    {
        Launches++;
        if (UseGemv(shape))
            _gemvF32(MatMulKernels.GemvConfig(shape, _warpSize), x, weights, y, shape);
        else
            _gemmF32(MatMulKernels.TiledGemmConfig(shape), x, weights, y, shape);
    }

    /// <param name="storage">F16 or BF16: what the 16-bit weights are.</param>
    public void MatMul(ArrayView<float> x, ArrayView<ushort> weights, TensorDType storage, ArrayView<float> y, MatMulShape shape)
    {
        Launches++;
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
        Launches++;
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
            MatMulKernels.WarpGemvSwiGlu<byte, TFormat>));

    /// <summary>The tiled GEMM, the warp GEMV and the gated GEMV of one quantized type.</summary>
    private sealed record BlockMatMul(
        Action<KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<float>, MatMulShape> Gemm,
        Action<KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<float>, MatMulShape> Gemv,
        Action<KernelConfig, ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, MatMulShape> SwiGluGemv);

    /// <summary>Whether <paramref name="shape"/> takes the GEMV kernels (few rows) rather than the tiled GEMM.</summary>
    public static bool UseGemv(MatMulShape shape) => shape.M <= MatMulKernels.GemvMaxRows;

    /// <summary>y = silu(x · gateᵀ) ⊙ (x · upᵀ) in one launch, for shapes <see cref="UseGemv"/> accepts; f32 weights.</summary>
    public void SwiGluGemv(ArrayView<float> x, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> y, MatMulShape shape)
    {
        Launches++;
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
        Launches++;
        kernel(MatMulKernels.GemvConfig(shape, _warpSize), x, gate, up, y, shape);
    }

    /// <summary><see cref="SwiGluGemv(ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, MatMulShape)"/> on blocks of a quantized type.</summary>
    public void SwiGluGemv(ArrayView<float> x, ArrayView<byte> gate, ArrayView<byte> up, TensorDType storage, ArrayView<float> y, MatMulShape shape)
    {
        LoadBlockMatMul(storage);
        Launches++;
        _blockMatMuls[storage].SwiGluGemv(MatMulKernels.GemvConfig(shape, _warpSize), x, gate, up, y, shape);
    }

    public void RmsNorm(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> y, int rows, int dim, float eps)
    {
        Launches++;
        _rmsNorm(NormKernels.RmsNormConfig(rows), x, weight, y, dim, eps);
    }

    public void Rope(ArrayView<float> x, ArrayView<int> positions, ArrayView<float> cos, ArrayView<float> sin, RopeShape shape)
    {
        Launches++;
        _rope(positions.IntLength * shape.Heads * (shape.HeadDim / 2), x, positions, cos, sin, shape);
    }

    public void Attention(ArrayView<float> q, ArrayView<int> queryPositions, ArrayView<float> keys, ArrayView<float> values,
        ArrayView<int> keyPositions, ArrayView<float> output, ArrayView<float> probabilities, AttentionShape shape)
    {
        Launches++;
        _attention(AttentionKernels.AttentionConfig(shape, _warpSize), q, queryPositions, keys, values, keyPositions,
            output, probabilities, shape);
    }

    public bool FitsTiledAttention(AttentionShape shape) => AttentionKernels.FitsTiledAttention(shape, _warpSize);

    /// <summary>Attention without the weights kept: no per-key totals. Only for shapes <see cref="FitsTiledAttention"/> accepts.</summary>
    public void TiledAttention(ArrayView<float> q, ArrayView<int> queryPositions, ArrayView<float> keys, ArrayView<float> values,
        ArrayView<int> keyPositions, ArrayView<float> output, AttentionShape shape)
    {
        Launches++;
        _tiledAttention(AttentionKernels.TiledAttentionConfig(shape), q, queryPositions, keys, values, keyPositions, output, shape);
    }

    public void AddKeyTotals(ArrayView<float> probabilities, ArrayView<float> totals, AttentionShape shape)
    {
        Launches++;
        _keyTotals(shape.Keys, probabilities, totals, shape);
    }

    public void SwiGlu(ArrayView<float> gate, ArrayView<float> up)
    {
        Launches++;
        _swiGlu(gate.IntLength, gate, up);
    }

    public void AddBias(ArrayView<float> x, ArrayView<float> bias)
    {
        Launches++;
        _addBias(x.IntLength, x, bias);
    }

    public void GatherRows(ArrayView<float> source, ArrayView<int> rows, int width, ArrayView<float> destination)
    {
        Launches++;
        _gatherRows(rows.IntLength * width, source, rows, width, destination);
    }

    public void ScatterRows(ArrayView<float> source, ArrayView<int> rows, int width, ArrayView<float> destination)
    {
        Launches++;
        _scatterRows(rows.IntLength * width, source, rows, width, destination);
    }
}
