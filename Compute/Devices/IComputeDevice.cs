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
/// The operations a transformer block needs, on activations in host memory. Every backend computes
/// in float32; weights may be stored f32, f16 or bf16. Shapes are row-major, one row per token.
/// </summary>
public interface IComputeDevice : IDisposable
{
    /// <summary>What it runs on, for logs ("cpu: 2 threads, AVX-512", "cuda: NVIDIA ...").</summary>
    string Description { get; }

    /// <summary>Copies (and packs, converts or uploads) a weight matrix; the tensor's file may be closed afterwards.</summary>
    IDeviceMatrix PrepareMatrix(WeightTensor weight, TensorDType? storage = null);

    /// <summary>y[m, w.Rows] = x[m, w.Cols] · wᵀ.</summary>
    void MatMul(ReadOnlySpan<float> x, int m, IDeviceMatrix w, Span<float> y);

    /// <summary>y[r] = x[r] / rms(x[r]) * weight, for each of the rows of length weight.Length.</summary>
    void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y);

    /// <summary>Rotates each head of each row of x [rows, heads * headDim] by the row's position.</summary>
    void Rope(Span<float> x, int heads, ReadOnlySpan<int> positions, RopeTable table);

    /// <summary>
    /// Causal grouped-query attention of one sequence. Query row i (position queryPositions[i]) attends
    /// to every key j with keyPositions[j] &lt;= queryPositions[i]. q: [nq, heads*headDim];
    /// keys, values: [nk, kvHeads*headDim]; output: [nq, heads*headDim]. When keyAttention is not
    /// empty, keyAttention[j] receives the attention key j got, summed over heads and queries.
    /// </summary>
    void Attention(ReadOnlySpan<float> q, ReadOnlySpan<int> queryPositions,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<int> keyPositions,
        int heads, int kvHeads, int headDim, Span<float> output, Span<float> keyAttention);

    /// <summary>gate = silu(gate) * up, elementwise.</summary>
    void SwiGlu(Span<float> gate, ReadOnlySpan<float> up);

    /// <summary>x += y, elementwise.</summary>
    void Add(Span<float> x, ReadOnlySpan<float> y);

    /// <summary>x[r] += bias for every row r of length bias.Length.</summary>
    void AddBias(Span<float> x, ReadOnlySpan<float> bias);
}
