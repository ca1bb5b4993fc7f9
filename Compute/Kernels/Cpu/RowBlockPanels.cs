using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>The GEMM's view of a matrix that <see cref="PackedMatrix.HoldsRowBlocks"/>: panel slices dequantized to float32.</summary>
internal static unsafe class RowBlockPanels
{
    /// <summary>
    /// Columns [k0, k0 + kc) of rows [32p, 32p + 32), dequantized into a float32 slice [kc][32] (the layout the GEMM's
    /// micro-kernel reads); k0 and kc are whole blocks. Rows past the matrix are the zero padding, which decodes to 0
    /// in every block type (d = 0). Returns the slice.
    /// </summary>
    public static float* Dequantize(PackedMatrix w, int p, int k0, int kc, float* slice)
    {
        const int W = PackedMatrix.PanelWidth;
        var type = w.StorageType;
        long start = type.ByteCount(k0);
        int bytes = checked((int)type.ByteCount(kc));
        float* row = Scratch.Current.Get(Scratch.RowValues, kc);
        var values = new Span<float>(row, kc);
        byte* first = w.Panel(p);
        for (int r = 0; r < W; r++)
        {
            WeightConvert.ToSingle(new ReadOnlySpan<byte>(first + r * w.RowBytes + start, bytes), type, values);
            for (int c = 0; c < kc; c++)
                slice[c * W + r] = row[c];
        }
        return slice;
    }
}
