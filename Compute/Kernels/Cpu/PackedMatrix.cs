using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>A weight matrix [rows = out, cols = in] laid out for the CPU GEMM and GEMV kernels.</summary>
/// <remarks>
/// Rows are grouped into panels of <see cref="PanelWidth"/>; a panel is Cols consecutive k-steps, each
/// holding that column's weight for the panel's 32 rows (see <see cref="IWeightFormat"/> for the 16-bit
/// order). Any k-range of a panel is therefore one contiguous stream, which is what both the blocked GEMM
/// (one KC block at a time) and the GEMV (whole panels) read. The last panel is zero-padded. 16-bit
/// storage stays 16-bit here and is widened in registers.
/// </remarks>
public sealed unsafe class PackedMatrix
{
    public const int PanelWidth = 32;

    // Pinned on the pinned-object heap, so _panels stays valid; ulong elements allow matrices over 2 GiB.
    private readonly ulong[] _buffer;
    private readonly byte* _panels;

    private PackedMatrix(int rows, int cols, TensorDType storage)
    {
        Rows = rows;
        Cols = cols;
        StorageType = storage;
        Panels = (rows + PanelWidth - 1) / PanelWidth;
        StepBytes = PanelWidth * storage.Size();
        PanelBytes = (long)cols * StepBytes;
        // 64 spare bytes so panel 0 can start on a cache line: every k-step load is then aligned.
        _buffer = GC.AllocateArray<ulong>(checked((int)((Panels * PanelBytes + 64 + 7) / 8)), pinned: true);
        fixed (ulong* p = _buffer)
            _panels = (byte*)(((nuint)p + 63) & ~(nuint)63);
    }

    public int Rows { get; }
    public int Cols { get; }
    public TensorDType StorageType { get; }

    /// <summary>Bytes this matrix holds in memory (panels, zero padding and alignment slack).</summary>
    public long ResidentBytes => (long)_buffer.Length * sizeof(ulong);

    internal int Panels { get; }
    internal int StepBytes { get; }
    internal long PanelBytes { get; }
    internal byte* Panel(int p) => _panels + p * PanelBytes;

    /// <summary>Packs a 2-D tensor, stored as <paramref name="storage"/> (default: the tensor's own dtype).</summary>
    public static PackedMatrix Pack(WeightTensor w, TensorDType? storage = null)
    {
        if (w.Shape.Length != 2)
            throw new ArgumentException($"{w.Name}: a packed matrix needs a 2-D tensor, got shape [{string.Join(", ", w.Shape)}]", nameof(w));
        var m = new PackedMatrix(w.Rows, w.Cols, storage ?? w.DType);
        var rows = new float[PanelWidth * m.Cols];
        for (int p = 0; p < m.Panels; p++)
        {
            int valid = Math.Min(PanelWidth, m.Rows - p * PanelWidth);
            var panelRows = rows.AsSpan(0, valid * m.Cols);
            w.CopyTo(panelRows, (long)p * PanelWidth * m.Cols);
            m.WritePanel(p, panelRows);
        }
        return m;
    }

    /// <summary>Packs a row-major float32 matrix [rows, cols], stored as <paramref name="storage"/>.</summary>
    public static PackedMatrix Pack(ReadOnlySpan<float> rowMajor, int rows, int cols, TensorDType storage)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        if (rowMajor.Length < (long)rows * cols)
            throw new ArgumentException($"{rowMajor.Length} floats cannot hold a [{rows}, {cols}] matrix", nameof(rowMajor));
        var m = new PackedMatrix(rows, cols, storage);
        for (int p = 0; p < m.Panels; p++)
        {
            int valid = Math.Min(PanelWidth, rows - p * PanelWidth);
            m.WritePanel(p, rowMajor.Slice(p * PanelWidth * cols, valid * cols));
        }
        return m;
    }

    /// <summary>The weight at [row, col] as the kernels see it (after rounding to the storage type).</summary>
    public float this[int row, int col]
    {
        get
        {
            if ((uint)row >= (uint)Rows || (uint)col >= (uint)Cols)
                throw new ArgumentOutOfRangeException(nameof(row), $"[{row}, {col}] is outside [{Rows}, {Cols}]");
            byte* step = Panel(row / PanelWidth) + (long)col * StepBytes;
            return StorageType switch
            {
                TensorDType.F32 => F32Weights.Load(step, row % PanelWidth),
                TensorDType.BF16 => Bf16Weights.Load(step, row % PanelWidth),
                _ => F16Weights.Load(step, row % PanelWidth),
            };
        }
    }

    private void WritePanel(int p, ReadOnlySpan<float> rows)
    {
        switch (StorageType)
        {
            case TensorDType.F32: WritePanel<F32Weights>(p, rows); break;
            case TensorDType.BF16: WritePanel<Bf16Weights>(p, rows); break;
            default: WritePanel<F16Weights>(p, rows); break;
        }
    }

    /// <summary>Transposes up to 32 source rows into panel p; rows past the source stay zero (fresh array).</summary>
    private void WritePanel<TFormat>(int p, ReadOnlySpan<float> rows) where TFormat : IWeightFormat
    {
        byte* panel = Panel(p);
        int valid = Cols == 0 ? 0 : rows.Length / Cols;
        for (int r = 0; r < valid; r++)
        {
            var row = rows.Slice(r * Cols, Cols);
            byte* step = panel;
            for (int k = 0; k < row.Length; k++, step += StepBytes)
                TFormat.Store(step, r, row[k]);
        }
    }
}
