using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Kernels.Cpu;

/// <summary>A weight matrix [rows = out, cols = in] laid out for the CPU GEMM and GEMV kernels.</summary>
/// <remarks>
/// Rows are grouped into panels of <see cref="PanelWidth"/>; a panel is Cols consecutive k-steps, each
/// holding that column's weight for the panel's 32 rows (see <see cref="IWeightFormat"/> for the 16-bit
/// order). Any k-range of a panel is therefore one contiguous stream, which is what both the blocked GEMM
/// (one KC block at a time) and the GEMV (whole panels) read. The last panel is zero-padded. 16-bit
/// storage stays 16-bit here and is widened in registers. Q8_0 panels hold 32-column blocks instead of
/// k-steps (<see cref="Q8Panels"/>), in the same bytes as the llama.cpp blocks they come from. The other quantized
/// types (<see cref="HoldsRowBlocks"/>) keep llama.cpp's own row-major blocks, each row one contiguous run (see
/// <see cref="BlockGemv"/> for why); a "panel" of them is simply 32 consecutive rows.
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
        RowBytes = storage.ByteCount(cols);
        StepBytes = storage.IsQuantized() ? 0 : PanelWidth * storage.Size();
        PanelBytes = PanelWidth * RowBytes;
        // 64 spare bytes so panel 0 can start on a cache line: every k-step load is then aligned.
        _buffer = GC.AllocateArray<ulong>(checked((int)((Panels * PanelBytes + 64 + 7) / 8)), pinned: true);
        fixed (ulong* p = _buffer)
            _panels = (byte*)(((nuint)p + 63) & ~(nuint)63);
    }

    /// <summary>Another matrix with the same contents in memory of its own (the kernel benchmark streams copies from memory).</summary>
    internal PackedMatrix Copy()
    {
        var copy = new PackedMatrix(Rows, Cols, StorageType);
        Buffer.MemoryCopy(_panels, copy._panels, Panels * PanelBytes, Panels * PanelBytes);
        return copy;
    }

    public int Rows { get; }
    public int Cols { get; }
    public TensorDType StorageType { get; }

    /// <summary>Bytes this matrix holds in memory (panels, zero padding and alignment slack).</summary>
    public long ResidentBytes => (long)_buffer.Length * sizeof(ulong);

    internal int Panels { get; }

    /// <summary>Bytes per column of a panel: one k-step (0 for the quantized types, which have none).</summary>
    internal int StepBytes { get; }
    internal long PanelBytes { get; }
    internal byte* Panel(int p) => _panels + p * PanelBytes;

    /// <summary>Bytes of one row as the storage type stores it.</summary>
    internal long RowBytes { get; }

    /// <summary>Whether the matrix keeps llama.cpp's row-major blocks (the quantized types but Q8_0, which has panels).</summary>
    internal bool HoldsRowBlocks => StorageType.IsQuantized() && StorageType != TensorDType.Q8_0;

    /// <summary>Row <paramref name="row"/>'s blocks, for a matrix that <see cref="HoldsRowBlocks"/>.</summary>
    internal byte* Row(int row) => _panels + row * RowBytes;

    /// <summary>
    /// Packs a 2-D tensor, stored as <paramref name="storage"/> (default: the tensor's own dtype). Blocks of
    /// the storage type are copied as they are; other types are quantized (with llama.cpp's rounding for Q8_0,
    /// the reference quantizers for the others), which needs a column count that is a whole number of blocks.
    /// </summary>
    public static PackedMatrix Pack(WeightTensor w, TensorDType? storage = null)
    {
        if (w.Shape.Length != 2)
            throw new ArgumentException($"{w.Name}: a packed matrix needs a 2-D tensor, got shape [{string.Join(", ", w.Shape)}]", nameof(w));
        var type = storage ?? w.DType;
        CheckColumns(w.Name, w.Cols, type);
        var m = new PackedMatrix(w.Rows, w.Cols, type);
        if (type == TensorDType.Q8_0)
        {
            m.PackQ8(w);
            return m;
        }
        if (m.HoldsRowBlocks)
        {
            m.PackRowBlocks(w);
            return m;
        }
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
        CheckColumns("matrix", cols, storage);
        var m = new PackedMatrix(rows, cols, storage);
        if (m.HoldsRowBlocks)
        {
            for (int r = 0; r < rows; r++)
                WeightEncoding.Encode(rowMajor.Slice(r * cols, cols), storage, new Span<byte>(m.Row(r), checked((int)m.RowBytes)));
            return m;
        }
        if (storage == TensorDType.Q8_0)
        {
            var blocks = new byte[storage.ByteCount(cols)];
            for (int r = 0; r < rows; r++)
            {
                Q8Block.Quantize(rowMajor.Slice(r * cols, cols), blocks);
                Q8Panels.WriteRow(m.Panel(r / PanelWidth), r % PanelWidth, blocks);
            }
            return m;
        }
        for (int p = 0; p < m.Panels; p++)
        {
            int valid = Math.Min(PanelWidth, rows - p * PanelWidth);
            m.WritePanel(p, rowMajor.Slice(p * PanelWidth * cols, valid * cols));
        }
        return m;
    }

    private static void CheckColumns(string name, int cols, TensorDType storage)
    {
        if (storage.IsQuantized() && cols % storage.BlockSize() != 0)
            throw new ArgumentException(
                $"{name}: {storage} quantizes each row in blocks of {storage.BlockSize()} columns, so it needs a column count that is a multiple of {storage.BlockSize()}, but this matrix has {cols}; keep it as f32, f16 or bf16");
    }

    /// <summary>Row by row: the tensor's own Q8_0 blocks, or its values quantized with llama.cpp's rounding.</summary>
    private void PackQ8(WeightTensor w)
    {
        long rowBytes = TensorDType.Q8_0.ByteCount(Cols);
        var blocks = new byte[rowBytes];
        var values = w.DType == TensorDType.Q8_0 ? null : new float[Cols];
        for (int r = 0; r < Rows; r++)
        {
            if (values is null)
            {
                w.Bytes.Slice(checked((int)(r * rowBytes)), blocks.Length).CopyTo(blocks);
            }
            else
            {
                w.CopyTo(values, (long)r * Cols);
                Q8Block.Quantize(values, blocks);
            }
            Q8Panels.WriteRow(Panel(r / PanelWidth), r % PanelWidth, blocks);
        }
    }

    /// <summary>Row-major blocks: the tensor's own bytes when it is of the storage type, else its rows quantized.</summary>
    private void PackRowBlocks(WeightTensor w)
    {
        if (w.DType == StorageType)
        {
            w.Bytes.CopyTo(new Span<byte>(_panels, checked((int)w.ByteLength)));
            return;
        }
        var values = new float[Cols];
        for (int r = 0; r < Rows; r++)
        {
            w.CopyTo(values, (long)r * Cols);
            WeightEncoding.Encode(values, StorageType, new Span<byte>(Row(r), checked((int)RowBytes)));
        }
    }

    /// <summary>The weight at [row, col] as the kernels see it (after rounding to the storage type).</summary>
    public float this[int row, int col]
    {
        get
        {
            if ((uint)row >= (uint)Rows || (uint)col >= (uint)Cols)
                throw new ArgumentOutOfRangeException(nameof(row), $"[{row}, {col}] is outside [{Rows}, {Cols}]");
            if (HoldsRowBlocks)
            {
                int size = StorageType.BlockSize(), bytes = StorageType.BlockBytes();
                Span<float> block = stackalloc float[size];
                WeightConvert.ToSingle(new ReadOnlySpan<byte>(Row(row) + col / size * bytes, bytes), StorageType, block);
                return block[col % size];
            }
            byte* step = Panel(row / PanelWidth) + (long)col * StepBytes;
            return StorageType switch
            {
                TensorDType.F32 => F32Weights.Load(step, row % PanelWidth),
                TensorDType.BF16 => Bf16Weights.Load(step, row % PanelWidth),
                TensorDType.Q8_0 => Q8Panels.Load(Panel(row / PanelWidth), row % PanelWidth, col),
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
