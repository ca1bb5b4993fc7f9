using FtpCluster.Compute.Models;
using ILGPU;
using ILGPU.Runtime;

namespace FtpCluster.Compute.Kernels.Ilgpu;

/// <summary>
/// The matrix kernels of one storage type: the GEMV, the two GEMMs, the gated GEMV and the q/k/v GEMV. Weights
/// come in as the bytes of their device buffer and are viewed as the storage type's elements here, so that callers
/// hold one kind of matrix whatever its type.
/// </summary>
internal abstract class MatrixKernels
{
    public abstract void MatMul(MatMulKernel kernel, KernelConfig config, ArrayView<float> x, ArrayView<byte> w, ArrayView<float> y, MatMulShape shape);

    public abstract void SwiGluGemv(KernelConfig config, ArrayView<float> x, ArrayView<byte> gate, ArrayView<byte> up,
        ArrayView<float> y, MatMulShape shape, ArrayView<float> norm);

    public abstract void QkvGemv(KernelConfig config, ArrayView<float> x, ArrayView<byte> wq, ArrayView<byte> wk, ArrayView<byte> wv,
        ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, QkvShape shape, ArrayView<float> norm);

    /// <summary>Compiles the kernels of <paramref name="storage"/> for <paramref name="accelerator"/>.</summary>
    public static MatrixKernels Compile(Accelerator accelerator, TensorDType storage) => storage switch
    {
        TensorDType.F32 => new Of<float, F32Weights>(accelerator),
        TensorDType.F16 => new Of<ushort, F16Weights>(accelerator),
        TensorDType.BF16 => new Of<ushort, BF16Weights>(accelerator),
        TensorDType.Q8_0 => new Of<byte, Q8_0Weights>(accelerator),
        TensorDType.Q4_0 => new Of<byte, Q4_0Weights>(accelerator),
        TensorDType.Q4_1 => new Of<byte, Q4_1Weights>(accelerator),
        TensorDType.Q5_0 => new Of<byte, Q5_0Weights>(accelerator),
        TensorDType.Q5_1 => new Of<byte, Q5_1Weights>(accelerator),
        TensorDType.Q4_K => new Of<byte, Q4_KWeights>(accelerator),
        TensorDType.Q5_K => new Of<byte, Q5_KWeights>(accelerator),
        TensorDType.Q6_K => new Of<byte, Q6_KWeights>(accelerator),
        _ => throw new ArgumentOutOfRangeException(nameof(storage), storage, "no ILGPU matrix kernels for this storage type"),
    };

    /// <summary>The kernels specialized for weights of <typeparamref name="TStorage"/> read through <typeparamref name="TFormat"/>.</summary>
    private sealed class Of<TStorage, TFormat> : MatrixKernels
        where TStorage : unmanaged
        where TFormat : struct, IWeightFormat<TStorage>
    {
        private readonly Action<KernelConfig, ArrayView<float>, ArrayView<TStorage>, ArrayView<float>, MatMulShape> _gemv, _tiledGemm, _blockedGemm;
        private readonly Action<KernelConfig, ArrayView<float>, ArrayView<TStorage>, ArrayView<TStorage>, ArrayView<float>, MatMulShape,
            ArrayView<float>> _swiGluGemv;
        private readonly Action<KernelConfig, ArrayView<float>, ArrayView<TStorage>, ArrayView<TStorage>, ArrayView<TStorage>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape, ArrayView<float>> _qkvGemv;

        public Of(Accelerator accelerator)
        {
            _gemv = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<TStorage>, ArrayView<float>, MatMulShape>(
                MatMulKernels.WarpGemv<TStorage, TFormat>);
            _tiledGemm = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<TStorage>, ArrayView<float>, MatMulShape>(
                MatMulKernels.TiledGemm<TStorage, TFormat>);
            _blockedGemm = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<TStorage>, ArrayView<float>, MatMulShape>(
                MatMulKernels.BlockedGemm<TStorage, TFormat>);
            _swiGluGemv = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<TStorage>, ArrayView<TStorage>, ArrayView<float>, MatMulShape,
                ArrayView<float>>(MatMulKernels.WarpGemvSwiGlu<TStorage, TFormat>);
            _qkvGemv = accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<TStorage>, ArrayView<TStorage>, ArrayView<TStorage>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape, ArrayView<float>>(MatMulKernels.WarpGemvQkv<TStorage, TFormat>);
        }

        public override void MatMul(MatMulKernel kernel, KernelConfig config, ArrayView<float> x, ArrayView<byte> w, ArrayView<float> y,
            MatMulShape shape)
        {
            var launch = kernel switch
            {
                MatMulKernel.Gemv => _gemv,
                MatMulKernel.TiledGemm => _tiledGemm,
                _ => _blockedGemm,
            };
            launch(config, x, w.Cast<TStorage>(), y, shape);
        }

        public override void SwiGluGemv(KernelConfig config, ArrayView<float> x, ArrayView<byte> gate, ArrayView<byte> up,
            ArrayView<float> y, MatMulShape shape, ArrayView<float> norm) =>
            _swiGluGemv(config, x, gate.Cast<TStorage>(), up.Cast<TStorage>(), y, shape, norm);

        public override void QkvGemv(KernelConfig config, ArrayView<float> x, ArrayView<byte> wq, ArrayView<byte> wk, ArrayView<byte> wv,
            ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, QkvShape shape, ArrayView<float> norm) =>
            _qkvGemv(config, x, wq.Cast<TStorage>(), wk.Cast<TStorage>(), wv.Cast<TStorage>(), q, k, v, shape, norm);
    }
}
