namespace FtpCluster.Grains.Wire;

/// <summary>
/// FTP's one-pass plan as it travels with rows: which blocks of the model compute each row of a packet,
/// a [rows, layers] bit matrix, each row padded to whole bytes (bit b of a row is block b).
/// </summary>
public sealed class RowBlockPlan
{
    private readonly byte[] _bits;

    public RowBlockPlan(int rows, int layers, byte[] bits)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentNullException.ThrowIfNull(bits);
        if (bits.Length != (long)rows * BytesPerRowOf(layers))
            throw new ArgumentException($"a plan of {rows} rows × {layers} blocks needs {(long)rows * BytesPerRowOf(layers)} bytes, got {bits.Length}", nameof(bits));
        Rows = rows;
        Layers = layers;
        _bits = bits;
    }

    /// <summary>A plan where no block computes any row yet; <see cref="Set"/> fills it.</summary>
    public RowBlockPlan(int rows, int layers) : this(rows, layers, new byte[(long)rows * BytesPerRowOf(layers)])
    {
    }

    public int Rows { get; }

    public int Layers { get; }

    public int BytesPerRow => BytesPerRowOf(Layers);

    public static int BytesPerRowOf(int layers) => (layers + 7) / 8;

    /// <summary>The bit matrix as it goes on the wire.</summary>
    public ReadOnlySpan<byte> Bits => _bits;

    public bool Computes(int row, int block) => (_bits[row * BytesPerRow + block / 8] & (1 << (block % 8))) != 0;

    public void Set(int row, int block) => _bits[row * BytesPerRow + block / 8] |= (byte)(1 << (block % 8));

    /// <summary>Whether any of blocks [<paramref name="first"/>, <paramref name="end"/>) computes <paramref name="row"/>.</summary>
    public bool ComputesAny(int row, int first, int end)
    {
        for (int b = first; b < end; b++)
            if (Computes(row, b)) return true;
        return false;
    }

    /// <summary>The plan of the given rows, in the given order.</summary>
    public RowBlockPlan SelectRows(IReadOnlyList<int> rows)
    {
        int width = BytesPerRow;
        var bits = new byte[rows.Count * width];
        for (int i = 0; i < rows.Count; i++)
            _bits.AsSpan(rows[i] * width, width).CopyTo(bits.AsSpan(i * width, width));
        return new RowBlockPlan(rows.Count, Layers, bits);
    }

    /// <summary>Per block in [<paramref name="first"/>, <paramref name="end"/>), the sorted rows it computes.</summary>
    public int[][] BlockRows(int first, int end)
    {
        var result = new int[end - first][];
        for (int b = first; b < end; b++)
            result[b - first] = Enumerable.Range(0, Rows).Where(r => Computes(r, b)).ToArray();
        return result;
    }
}
