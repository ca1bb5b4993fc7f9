namespace FtpCluster.Compute.Devices;

/// <summary>
/// Single operations of an <see cref="IComputeDevice"/> on host spans: each call allocates device buffers,
/// uploads its operands, runs the operation and downloads the result. For tests and one-off calls; a
/// forward pass keeps its activations on the device instead (<see cref="Inference.TransformerStage"/>).
/// </summary>
public static class HostSpanOperations
{
    /// <summary>A device copy of <paramref name="data"/> in a buffer of its own.</summary>
    public static DeviceBuffer<T> UploadNew<T>(this IComputeDevice device, ReadOnlySpan<T> data)
        where T : unmanaged
    {
        var buffer = device.Allocate<T>(Math.Max(data.Length, 1));
        device.Upload(data, buffer.Span(data.Length));
        return buffer;
    }

    /// <summary>The contents of <paramref name="source"/> in a new host array.</summary>
    public static T[] ToArray<T>(this IComputeDevice device, DeviceSpan<T> source)
        where T : unmanaged
    {
        var values = new T[source.Length];
        if (values.Length > 0)
            device.Download(source, values);
        return values;
    }

    public static void MatMul(this IComputeDevice device, ReadOnlySpan<float> x, int m, IDeviceMatrix w, Span<float> y)
    {
        if (m < 0 || x.Length < (long)m * w.Cols || y.Length < (long)m * w.Rows)
            throw new ArgumentException($"GEMM shapes: x has {x.Length} floats for [{m}, {w.Cols}], y has {y.Length} for [{m}, {w.Rows}]");
        using var input = device.UploadNew(x[..(m * w.Cols)]);
        using var output = device.Allocate<float>(Math.Max(m * w.Rows, 1));
        device.MatMul(input.Span(m * w.Cols), m, w, output.Span(m * w.Rows));
        Download(device, output, y[..(m * w.Rows)]);
    }

    public static void RmsNorm(this IComputeDevice device, ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        int rows = x.Length / weight.Length, length = rows * weight.Length;
        if (y.Length < length)
            throw new ArgumentException($"RMSNorm: y has {y.Length} floats for {rows} rows of {weight.Length}");
        using var input = device.UploadNew(x[..length]);
        using var scale = device.UploadNew(weight);
        using var output = device.Allocate<float>(Math.Max(length, 1));
        device.RmsNorm(input.Span(length), scale.Span(weight.Length), eps, output.Span(length));
        Download(device, output, y[..length]);
    }

    public static void Rope(this IComputeDevice device, Span<float> x, int heads, ReadOnlySpan<int> positions, RopeTable table)
    {
        int length = positions.Length * heads * table.HeadDim;
        if (x.Length < length)
            throw new ArgumentException($"RoPE: x has {x.Length} floats for {positions.Length} rows of {heads} heads × {table.HeadDim}");
        int maxPosition = 0;
        foreach (int p in positions)
        {
            if (p < 0)
                throw new ArgumentOutOfRangeException(nameof(positions), $"RoPE: position {p} is negative");
            maxPosition = Math.Max(maxPosition, p);
        }
        using var rows = device.UploadNew<float>(x[..length]);
        using var rowPositions = device.UploadNew(positions);
        device.Rope(rows.Span(length), heads, default, 0, rowPositions.Span(positions.Length), maxPosition, table);
        Download(device, rows, x[..length]);
    }

    public static void Attention(this IComputeDevice device, ReadOnlySpan<float> q, ReadOnlySpan<int> queryPositions,
        ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<int> keyPositions,
        int heads, int kvHeads, int headDim, Span<float> output, Span<float> keyAttention)
    {
        int nq = queryPositions.Length, nk = keyPositions.Length, qLength = nq * heads * headDim, kvLength = nk * kvHeads * headDim;
        if (q.Length < qLength || output.Length < qLength || keys.Length < kvLength || values.Length < kvLength
            || (!keyAttention.IsEmpty && keyAttention.Length < nk))
            throw new ArgumentException($"attention shapes: {nq} queries and {nk} keys of {heads}/{kvHeads} heads × {headDim} do not fit the spans given");
        using var qBuffer = device.UploadNew(q[..qLength]);
        using var qPositions = device.UploadNew(queryPositions);
        using var kBuffer = device.UploadNew(keys[..kvLength]);
        using var vBuffer = device.UploadNew(values[..kvLength]);
        using var kPositions = device.UploadNew(keyPositions);
        using var outBuffer = device.Allocate<float>(Math.Max(qLength, 1));
        using var totals = device.Allocate<float>(Math.Max(nk, 1));
        var totalsSpan = keyAttention.IsEmpty ? totals.Span(0) : totals.Span(nk);
        device.Attention(qBuffer.Span(qLength), qPositions.Span(nq), kBuffer.Span(kvLength), vBuffer.Span(kvLength), kPositions.Span(nk),
            heads, kvHeads, headDim, outBuffer.Span(qLength), totalsSpan);
        Download(device, outBuffer, output[..qLength]);
        if (!keyAttention.IsEmpty)
            Download(device, totals, keyAttention[..nk]);
    }

    public static void MatMulAdd(this IComputeDevice device, ReadOnlySpan<float> x, int m, IDeviceMatrix w, Span<float> y)
    {
        if (m < 0 || x.Length < (long)m * w.Cols || y.Length < (long)m * w.Rows)
            throw new ArgumentException($"GEMM shapes: x has {x.Length} floats for [{m}, {w.Cols}], y has {y.Length} for [{m}, {w.Rows}]");
        using var input = device.UploadNew(x[..(m * w.Cols)]);
        using var output = device.UploadNew<float>(y[..(m * w.Rows)]);
        device.MatMulAdd(input.Span(m * w.Cols), m, w, output.Span(m * w.Rows));
        Download(device, output, y[..(m * w.Rows)]);
    }

    public static void SwiGluMatMul(this IComputeDevice device, ReadOnlySpan<float> x, int m, IDeviceMatrix gate, IDeviceMatrix up, Span<float> y)
    {
        if (m < 0 || x.Length < (long)m * gate.Cols || y.Length < (long)m * gate.Rows)
            throw new ArgumentException($"SwiGLU shapes: x has {x.Length} floats for [{m}, {gate.Cols}], y has {y.Length} for [{m}, {gate.Rows}]");
        using var input = device.UploadNew(x[..(m * gate.Cols)]);
        using var output = device.Allocate<float>(Math.Max(m * gate.Rows, 1));
        device.SwiGluMatMul(input.Span(m * gate.Cols), m, gate, up, output.Span(m * gate.Rows));
        Download(device, output, y[..(m * gate.Rows)]);
    }

    public static void AddBias(this IComputeDevice device, Span<float> x, ReadOnlySpan<float> bias)
    {
        int length = bias.IsEmpty ? 0 : x.Length / bias.Length * bias.Length;
        using var xBuffer = device.UploadNew<float>(x[..length]);
        using var biasBuffer = device.UploadNew(bias);
        device.AddBias(xBuffer.Span(length), biasBuffer.Span(bias.Length));
        Download(device, xBuffer, x[..length]);
    }

    private static void Download(IComputeDevice device, DeviceBuffer<float> buffer, Span<float> destination)
    {
        if (!destination.IsEmpty)
            device.Download(buffer.Span(destination.Length), destination);
    }
}
