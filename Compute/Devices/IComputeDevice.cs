using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Devices;

/// <summary>A weight matrix [rows = out features, cols = in features] prepared for one device.</summary>
public interface IDeviceMatrix : IDisposable
{
    int Rows { get; }
    int Cols { get; }
    TensorDType StorageType { get; }

    /// <summary>Bytes this matrix keeps resident (host or device memory).</summary>
    long ResidentBytes { get; }
}

/// <summary>
/// An RMSNorm that a product's input rows take first: row / rms(row) ⊙ <see cref="Weight"/>. The products that follow
/// a block's norms take it as a parameter, so that a device can fold the norm into them: the ILGPU GEMV scales its
/// weights by <see cref="Weight"/> and its dot products by each row's 1 / rms, writing no normalized rows, in the same launch.
/// </summary>
public readonly record struct RowNorm(DeviceSpan<float> Weight, float Eps);

/// <summary>
/// The operations a transformer block needs, on activations in the device's own memory
/// (<see cref="DeviceSpan{T}"/>s of buffers it allocated), so that a stage's blocks run without the host
/// between them: the rows go up once (<see cref="Upload{T}"/>) and come back once (<see cref="Download{T}"/>).
/// Every backend computes in float32; weights may be stored f32, f16, bf16 or in llama.cpp's quantized blocks.
/// Shapes are row-major, one row per token. <see cref="HostSpanOperations"/> runs single operations on host spans.
/// </summary>
public interface IComputeDevice : IDisposable
{
    /// <summary>What it runs on, for logs ("cpu: 2 threads, AVX-512", "cuda: NVIDIA ...").</summary>
    string Description { get; }

    /// <summary>Every host-device copy made so far through <see cref="Upload{T}"/> and <see cref="Download{T}"/>.</summary>
    DeviceTransfers Transfers { get; }

    /// <summary>Copies (and packs, converts or uploads) a weight matrix; the tensor's file may be closed afterwards.</summary>
    IDeviceMatrix PrepareMatrix(WeightTensor weight, TensorDType? storage = null);

    /// <summary>A buffer of <paramref name="length"/> elements in the device's memory; its contents are undefined.</summary>
    DeviceBuffer<T> Allocate<T>(long length)
        where T : unmanaged;

    /// <summary>Host to device: <paramref name="source"/> into the first elements of <paramref name="destination"/>.</summary>
    void Upload<T>(ReadOnlySpan<T> source, DeviceSpan<T> destination)
        where T : unmanaged;

    /// <summary>Device to host: all of <paramref name="source"/> into <paramref name="destination"/>.</summary>
    void Download<T>(DeviceSpan<T> source, Span<T> destination)
        where T : unmanaged;

    /// <summary>Within the device: <paramref name="source"/> into the first elements of <paramref name="destination"/>.</summary>
    void Copy<T>(DeviceSpan<T> source, DeviceSpan<T> destination)
        where T : unmanaged;

    /// <summary>
    /// KV cache appends of a microbatch's sequences: each destination's rows of <paramref name="keys"/> and
    /// <paramref name="values"/> ([rows, kvDim]) and of <paramref name="positions"/> into its cache's room. One
    /// operation, so that a device can make the copies of several sequences in one launch.
    /// </summary>
    void AppendToCaches(DeviceSpan<float> keys, DeviceSpan<float> values, DeviceSpan<int> positions, IReadOnlyList<SequenceCache> destinations);

    /// <summary>y[m, w.Rows] = x[m, w.Cols] · wᵀ.</summary>
    void MatMul(DeviceSpan<float> x, int m, IDeviceMatrix w, DeviceSpan<float> y);

    /// <summary>y[r] = x[r] / rms(x[r]) * weight, for each of the rows of length weight.Length.</summary>
    void RmsNorm(DeviceSpan<float> x, DeviceSpan<float> weight, float eps, DeviceSpan<float> y);

    /// <summary>
    /// Rotates each head of each row of q [rows, heads * headDim] and of k [rows, kvHeads * headDim] by the row's
    /// position: one operation for both, so that a device can launch it once (k may be empty, with kvHeads 0).
    /// <paramref name="maxPosition"/> is the largest of <paramref name="positions"/>, known to the caller.
    /// </summary>
    void Rope(DeviceSpan<float> q, int heads, DeviceSpan<float> k, int kvHeads, DeviceSpan<int> positions, int maxPosition, RopeTable table);

    /// <summary>
    /// Causal grouped-query attention of one sequence. Query row i (position queryPositions[i]) attends
    /// to every key j with keyPositions[j] &lt;= queryPositions[i]. q: [nq, heads*headDim];
    /// keys, values: [nk, kvHeads*headDim]; output: [nq, heads*headDim]. When keyAttention is not
    /// empty, keyAttention[j] receives the attention key j got, summed over heads and queries.
    /// </summary>
    void Attention(DeviceSpan<float> q, DeviceSpan<int> queryPositions,
        DeviceSpan<float> keys, DeviceSpan<float> values, DeviceSpan<int> keyPositions,
        int heads, int kvHeads, int headDim, DeviceSpan<float> output, DeviceSpan<float> keyAttention);

    /// <summary>
    /// <see cref="Attention(DeviceSpan{float}, DeviceSpan{int}, DeviceSpan{float}, DeviceSpan{float}, DeviceSpan{int}, int, int, int, DeviceSpan{float}, DeviceSpan{float})"/>
    /// of several sequences' rows, each over its own cache (no per-key totals). One operation, so that a device can
    /// attend for several sequences in one launch: q, queryPositions and output hold the rows of all of them.
    /// </summary>
    void Attention(DeviceSpan<float> q, DeviceSpan<int> queryPositions, IReadOnlyList<SequenceCache> sequences,
        int heads, int kvHeads, int headDim, DeviceSpan<float> output);

    /// <summary>
    /// The attention's three projections of the same rows: q = x · wqᵀ, k = x · wkᵀ, v = x · wvᵀ. One operation, so that
    /// a device can make the three products in one launch (the ILGPU GEMV does for decode where they share a storage type).
    /// </summary>
    /// <param name="norm">When given, the products take x's rows RMS-normalized first, as <see cref="RmsNorm"/> gives them.</param>
    void QkvMatMul(DeviceSpan<float> x, int m, IDeviceMatrix wq, DeviceSpan<float> q, IDeviceMatrix wk, DeviceSpan<float> k,
        IDeviceMatrix wv, DeviceSpan<float> v, RowNorm? norm = null);

    /// <summary>y[m, w.Rows] += x[m, w.Cols] · wᵀ: a projection added onto the residual stream.</summary>
    void MatMulAdd(DeviceSpan<float> x, int m, IDeviceMatrix w, DeviceSpan<float> y);

    /// <summary>
    /// The gated half of the MLP: y[m, gate.Rows] = silu(x · gateᵀ) ⊙ (x · upᵀ), x [m, gate.Cols], silu(g) = g · sigmoid(g).
    /// One operation, so that a device can make both products and the gating one pass (the ILGPU GEMV does for decode).
    /// </summary>
    /// <param name="norm">When given, the products take x's rows RMS-normalized first, as <see cref="RmsNorm"/> gives them.</param>
    void SwiGluMatMul(DeviceSpan<float> x, int m, IDeviceMatrix gate, IDeviceMatrix up, DeviceSpan<float> y, RowNorm? norm = null);

    /// <summary>x[r] += bias for every row r of length bias.Length.</summary>
    void AddBias(DeviceSpan<float> x, DeviceSpan<float> bias);

    /// <summary>FTP's row subsets: destination row i = source row rows[i], rows of <paramref name="width"/> floats.</summary>
    void GatherRows(DeviceSpan<float> source, DeviceSpan<int> rows, int width, DeviceSpan<float> destination);

    /// <summary>The inverse of <see cref="GatherRows"/>: destination row rows[i] = source row i; other rows are left as they are.</summary>
    void ScatterRows(DeviceSpan<float> source, DeviceSpan<int> rows, int width, DeviceSpan<float> destination);
}
