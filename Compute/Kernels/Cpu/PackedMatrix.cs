using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>A weight matrix [rows = out, cols = in] laid out for the CPU GEMM and GEMV kernels.</summary>
public sealed class PackedMatrix
{
    private readonly float[] _data;

    private PackedMatrix(int rows, int cols, TensorDType storage, float[] data)
    {
        Rows = rows;
        Cols = cols;
        StorageType = storage;
        _data = data;
    }

    public int Rows { get; }
    public int Cols { get; }
    public TensorDType StorageType { get; }
    public long ResidentBytes => (long)_data.Length * sizeof(float);

    internal ReadOnlySpan<float> Data => _data;

    public static PackedMatrix Pack(WeightTensor w, TensorDType? storage = null)
    {
        var data = w.ToFloatArray();
        return new PackedMatrix(w.Rows, w.Cols, storage ?? w.DType, data);
    }

    public static PackedMatrix Pack(ReadOnlySpan<float> rowMajor, int rows, int cols, TensorDType storage)
    {
        return new PackedMatrix(rows, cols, storage, rowMajor.ToArray());
    }
}
