using System.Runtime.InteropServices;
using FtpCluster.Compute.Devices;

namespace FtpCluster.Compute.Inference;

/// <summary>
/// What a microbatch brings to a stage's device, packed into one host buffer so that it crosses to the
/// device in one copy (on a GPU each copy costs a round of latency, whatever its size): the hidden
/// rows, their positions, and for each row subset a plan names in advance (FTP) its row indices and
/// their positions. A subset chosen only as the blocks run (a router deciding block by block) is
/// uploaded when it is chosen, in a copy of its own.
/// </summary>
internal sealed class MicrobatchUpload(IComputeDevice device) : IDisposable
{
    private const int ElementBytes = sizeof(float);

    private readonly List<UploadedSubset> _subsets = [];
    private byte[] _host = [];
    private DeviceBuffer<byte>? _packed;
    private DeviceBuffer<int>? _late;

    /// <summary>The uploaded hidden rows [rows, dim]; the blocks update them in place.</summary>
    public DeviceSpan<float> Hidden { get; private set; }

    /// <summary>The uploaded rows' positions.</summary>
    public DeviceSpan<int> Positions { get; private set; }

    /// <summary>Packs and uploads the rows, checking every subset (sorted, distinct, inside the rows) first.</summary>
    public void Upload(ReadOnlySpan<TokenRow> rows, ReadOnlySpan<float> hidden, IReadOnlyList<int[]> subsets)
    {
        _subsets.Clear();
        long elements = hidden.Length + rows.Length;
        foreach (var subset in subsets)
        {
            Check(subset, rows.Length);
            elements += 2L * subset.Length;
        }
        long bytes = elements * ElementBytes;
        if (bytes > Array.MaxLength)
            throw new ArgumentException($"a microbatch of {rows.Length} rows and {subsets.Count} row subsets is {bytes} bytes, over the {Array.MaxLength} one upload may hold");
        if (_host.Length < bytes) _host = new byte[bytes];
        if (_packed is null || _packed.Length < bytes)
        {
            _packed?.Dispose();
            _packed = device.Allocate<byte>(Math.Max(bytes, 2L * (_packed?.Length ?? 0)));
        }

        int offset = 0;
        var floats = MemoryMarshal.Cast<byte, float>(_host.AsSpan(0, (int)bytes));
        var ints = MemoryMarshal.Cast<byte, int>(_host.AsSpan(0, (int)bytes));
        hidden.CopyTo(floats);
        offset += hidden.Length;
        for (int i = 0; i < rows.Length; i++) ints[offset + i] = rows[i].Position;
        offset += rows.Length;
        var subsetOffsets = new int[subsets.Count];
        for (int s = 0; s < subsets.Count; s++)
        {
            subsetOffsets[s] = offset;
            var subset = subsets[s];
            subset.CopyTo(ints.Slice(offset));
            for (int i = 0; i < subset.Length; i++) ints[offset + subset.Length + i] = rows[subset[i]].Position;
            offset += 2 * subset.Length;
        }
        device.Upload<byte>(_host.AsSpan(0, (int)bytes), _packed.Span((int)bytes));

        var packed = _packed.Span((int)bytes).Cast<int>();
        Hidden = packed.Slice(0, hidden.Length).Cast<float>();
        Positions = packed.Slice(hidden.Length, rows.Length);
        for (int s = 0; s < subsets.Count; s++)
        {
            int length = subsets[s].Length;
            _subsets.Add(new UploadedSubset(subsets[s], packed.Slice(subsetOffsets[s], length), packed.Slice(subsetOffsets[s] + length, length)));
        }
    }

    /// <summary>
    /// The device copies of a subset's row indices and positions: those uploaded with the rows when the
    /// plan named it, otherwise uploaded now (valid until the next subset is uploaded this way).
    /// </summary>
    public (DeviceSpan<int> Rows, DeviceSpan<int> Positions) Subset(int[] subset, ReadOnlySpan<TokenRow> rows)
    {
        foreach (var uploaded in _subsets)
            if (ReferenceEquals(uploaded.Subset, subset) || uploaded.Subset.AsSpan().SequenceEqual(subset))
                return (uploaded.Rows, uploaded.Positions);
        Check(subset, rows.Length);
        var values = new int[2 * subset.Length];
        subset.CopyTo(values, 0);
        for (int i = 0; i < subset.Length; i++) values[subset.Length + i] = rows[subset[i]].Position;
        if (_late is null || _late.Length < values.Length)
        {
            _late?.Dispose();
            _late = device.Allocate<int>(Math.Max(values.Length, 2L * (_late?.Length ?? 0)));
        }
        device.Upload<int>(values, _late.Span(values.Length));
        return (_late.Span(subset.Length), _late.All.Slice(subset.Length, subset.Length));
    }

    private static void Check(int[] subset, int rows)
    {
        for (int i = 0; i < subset.Length; i++)
        {
            if (i > 0 && subset[i] <= subset[i - 1])
                throw new ArgumentException($"row subset: indices must be sorted and distinct ({subset[i - 1]} then {subset[i]})");
            if ((uint)subset[i] >= (uint)rows)
                throw new ArgumentException($"row subset: row index {subset[i]} is outside the {rows} rows");
        }
    }

    public void Dispose()
    {
        _packed?.Dispose();
        _late?.Dispose();
    }

    private sealed record UploadedSubset(int[] Subset, DeviceSpan<int> Rows, DeviceSpan<int> Positions);
}
