using System.Reflection;
using FtpCluster.Compute.Kernels.Ilgpu;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace FtpCluster.Compute.Tests.Ilgpu;

/// <summary>
/// Compiles every kernel to PTX for sm_90 (H100/H200) with ILGPU's PTX backend, which needs no GPU.
/// The CPU accelerator runs kernels as .NET code, so kernel code only the CUDA backend rejects would
/// otherwise first fail on a GPU machine.
/// </summary>
public sealed class IlgpuPtxTests
{
    public static TheoryData<string> Kernels => new(KernelMethods().Keys);

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Kernel_compiles_to_ptx_for_sm_90(string kernel) => Assert.Contains(".entry", Ptx(kernel));

    /// <summary>Decode and prefill read 16-bit weights four to a load (8 bytes per lane), not one 2-byte load each.</summary>
    [Theory]
    [InlineData("gemv f16")]
    [InlineData("gemv bf16")]
    [InlineData("qkv gemv f16")]
    [InlineData("swiglu gemv f16")]
    [InlineData("swiglu gemv bf16")]
    [InlineData("blocked gemm f16")]
    public void Sixteen_bit_matrix_kernels_read_four_weights_per_load(string kernel) =>
        // ILGPU loads through generic addresses (ld.b64, not ld.global.b64); parameters come by ld.param.
        Assert.Matches(@"\sld(\.global)?(\.nc)?\.(b64|u64)\s+%rd\d+,\s*\[%rd\d+\]", Ptx(kernel));

    /// <summary>
    /// The blocked GEMM's 16 sums per thread and the GEMV's 8 per lane stay in registers: a local-memory array (what
    /// ILGPU makes of an array or an indexed struct) would put every multiply-add behind a memory access.
    /// </summary>
    [Theory]
    [InlineData("blocked gemm f32")]
    [InlineData("blocked gemm f16")]
    [InlineData("blocked gemm q4_k")]
    [InlineData("gemv f16")]
    [InlineData("swiglu gemv f16")]
    [InlineData("qkv gemv q8_0")]
    public void Matrix_kernels_keep_their_sums_in_registers(string kernel) => Assert.DoesNotContain(".local", Ptx(kernel));

    private static string Ptx(string kernel)
    {
        var (method, explicitlyGrouped) = KernelMethods()[kernel];
        using var context = Context.Create(builder => builder.CPU().EnableAlgorithms());
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90, CudaInstructionSet.ISA_78, nvvmAPI: null);
        var entry = explicitlyGrouped
            ? EntryPointDescription.FromExplicitlyGroupedKernel(method)
            : EntryPointDescription.FromImplicitlyGroupedKernel(method);
        return ((PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty)).PTXAssembly;
    }

    /// <summary>The kernels <see cref="IlgpuKernels"/> loads, by name; explicitly grouped ones take a KernelConfig.</summary>
    private static Dictionary<string, (MethodInfo Method, bool ExplicitlyGrouped)> KernelMethods()
    {
        var kernels = new Dictionary<string, (MethodInfo, bool)>();
        void Explicit(string name, Delegate kernel) => kernels.Add(name, (kernel.Method, true));
        void Implicit(string name, Delegate kernel) => kernels.Add(name, (kernel.Method, false));
        Explicit("gemm f32", (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulShape>)MatMulKernels.TiledGemm<float, F32Weights>);
        Explicit("gemm f16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>)MatMulKernels.TiledGemm<ushort, F16Weights>);
        Explicit("gemm bf16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>)MatMulKernels.TiledGemm<ushort, BF16Weights>);
        Explicit("blocked gemm f32", (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulShape>)MatMulKernels.BlockedGemm<float, F32Weights>);
        Explicit("blocked gemm f16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>)MatMulKernels.BlockedGemm<ushort, F16Weights>);
        Explicit("blocked gemm bf16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>)MatMulKernels.BlockedGemm<ushort, BF16Weights>);
        Explicit("gemv f32", (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulShape>)MatMulKernels.WarpGemv<float, F32Weights>);
        Explicit("gemv f16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>)MatMulKernels.WarpGemv<ushort, F16Weights>);
        Explicit("gemv bf16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulShape>)MatMulKernels.WarpGemv<ushort, BF16Weights>);
        Explicit("qkv gemv f32", (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape, ArrayView<float>>)MatMulKernels.WarpGemvQkv<float, F32Weights>);
        Explicit("qkv gemv f16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape, ArrayView<float>>)MatMulKernels.WarpGemvQkv<ushort, F16Weights>);
        Explicit("qkv gemv bf16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape, ArrayView<float>>)MatMulKernels.WarpGemvQkv<ushort, BF16Weights>);
        Explicit("swiglu gemv f32", (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulShape, ArrayView<float>>)
            MatMulKernels.WarpGemvSwiGlu<float, F32Weights>);
        Explicit("swiglu gemv f16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MatMulShape, ArrayView<float>>)
            MatMulKernels.WarpGemvSwiGlu<ushort, F16Weights>);
        Explicit("swiglu gemv bf16", (Action<ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, MatMulShape, ArrayView<float>>)
            MatMulKernels.WarpGemvSwiGlu<ushort, BF16Weights>);
        void Blocks<TFormat>(string type)
            where TFormat : struct, IWeightFormat<byte>
        {
            Explicit($"gemm {type}", (Action<ArrayView<float>, ArrayView<byte>, ArrayView<float>, MatMulShape>)MatMulKernels.TiledGemm<byte, TFormat>);
            Explicit($"blocked gemm {type}", (Action<ArrayView<float>, ArrayView<byte>, ArrayView<float>, MatMulShape>)
                MatMulKernels.BlockedGemm<byte, TFormat>);
            Explicit($"gemv {type}", (Action<ArrayView<float>, ArrayView<byte>, ArrayView<float>, MatMulShape>)MatMulKernels.WarpGemv<byte, TFormat>);
            Explicit($"qkv gemv {type}", (Action<ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<byte>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, QkvShape, ArrayView<float>>)MatMulKernels.WarpGemvQkv<byte, TFormat>);
            Explicit($"swiglu gemv {type}", (Action<ArrayView<float>, ArrayView<byte>, ArrayView<byte>, ArrayView<float>, MatMulShape, ArrayView<float>>)
                MatMulKernels.WarpGemvSwiGlu<byte, TFormat>);
        }
        Blocks<Q8_0Weights>("q8_0");
        Blocks<Q4_0Weights>("q4_0");
        Blocks<Q4_1Weights>("q4_1");
        Blocks<Q5_0Weights>("q5_0");
        Blocks<Q5_1Weights>("q5_1");
        Blocks<Q4_KWeights>("q4_k");
        Blocks<Q5_KWeights>("q5_k");
        Blocks<Q6_KWeights>("q6_k");
        Explicit("rmsnorm", (Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>)NormKernels.RmsNorm);
        Explicit("attention", (Action<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, ArrayView<float>, AttentionShape>)AttentionKernels.Attention);
        Explicit("tiled attention", (Action<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<float>, AttentionShape>)AttentionKernels.TiledAttention);
        Explicit("split-key attention", (Action<ArrayView<float>, ArrayView<int>, CacheGroup, ArrayView<float>, AttentionShape>)
            AttentionKernels.SplitKeyAttention);
        Explicit("combine splits", (Action<ArrayView<float>, ArrayView<float>, AttentionShape>)AttentionKernels.CombineSplits);
        Implicit("key totals", (Action<Index1D, ArrayView<float>, ArrayView<float>, AttentionShape>)AttentionKernels.KeyTotals);
        Implicit("rope", (Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, RopeShape>)RopeKernels.Rope);
        Implicit("swiglu", (Action<Index1D, ArrayView<float>, ArrayView<float>>)ElementwiseKernels.SwiGlu);
        Implicit("add bias", (Action<Index1D, ArrayView<float>, ArrayView<float>>)ElementwiseKernels.AddBias);
        Implicit("gather rows", (Action<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>>)RowKernels.Gather);
        Implicit("cache append", (Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, CacheGroup, int>)RowKernels.AppendToCaches);
        Implicit("scatter rows", (Action<Index1D, ArrayView<float>, ArrayView<int>, int, ArrayView<float>>)RowKernels.Scatter);
        return kernels;
    }
}
