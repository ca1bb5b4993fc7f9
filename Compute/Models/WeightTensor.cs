namespace FtpCluster.Compute.Models;

/// <summary>
/// One tensor of a checkpoint, read in place from its memory-mapped file. Row-major; a matrix is
/// [out_features, in_features] as in Hugging Face and llama2.c.
/// </summary>
public sealed unsafe class WeightTensor
{
    private readonly MappedFile _file;
    private readonly long _offset;

    public WeightTensor(string name, MappedFile file, long offset, TensorDType dtype, long[] shape)
    {
        Name = name;
        _file = file;
        _offset = offset;
        DType = dtype;
        Shape = shape;
        ByteLength = CheckedByteLength(file.Path, name, dtype, shape);
        ElementCount = ByteLength / dtype.Size();
        // Compared without adding: a crafted offset near long.MaxValue would wrap the sum past the check.
        if (offset < 0 || offset > file.Length || ByteLength > file.Length - offset)
            throw new ModelFormatException(file.Path, name,
                $"data of {ByteLength} bytes at offset {offset} lies beyond the end of the file ({file.Length} bytes): the file is truncated or damaged");
    }

    /// <summary>
    /// The largest tensor accepted, in bytes: reads go through spans, which address at most int.MaxValue bytes.
    /// </summary>
    public const long MaxByteLength = int.MaxValue;

    /// <summary>The name the file gives it (llama2.c files have none, so those names are made up, e.g. "layers.3.wq").</summary>
    public string Name { get; }
    public string FilePath => _file.Path;
    public TensorDType DType { get; }
    public long[] Shape { get; }
    public long ElementCount { get; }
    public long ByteLength { get; }

    public int Rows => (int)Shape[0];
    public int Cols => Shape.Length > 1 ? (int)Shape[1] : 1;

    public ReadOnlySpan<byte> Bytes => new(_file.At(_offset), checked((int)ByteLength));

    /// <summary>Elements [start, start + destination.Length) converted to float32.</summary>
    public void CopyTo(Span<float> destination, long start = 0)
    {
        if (start < 0 || start > ElementCount - destination.Length)
            throw new ArgumentOutOfRangeException(nameof(start));
        byte* p = _file.At(_offset + start * DType.Size());
        Kernels.Cpu.WeightConvert.ToSingle(new ReadOnlySpan<byte>(p, destination.Length * DType.Size()), DType, destination);
    }

    public float[] ToFloatArray()
    {
        var a = new float[checked((int)ElementCount)];
        CopyTo(a);
        return a;
    }

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    /// <summary>The tensor's size, refused when a dimension is negative or the size is past <see cref="MaxByteLength"/>.</summary>
    private static long CheckedByteLength(string path, string name, TensorDType dtype, long[] shape)
    {
        string shapeText = "[" + string.Join(", ", shape) + "]";
        long bytes = dtype.Size();
        foreach (long dimension in shape)
        {
            if (dimension < 0)
                throw new ModelFormatException(path, name, $"shape {shapeText} has a negative dimension");
            // A zero dimension makes the tensor empty, but its other dimensions still become row and column counts.
            if (dimension > MaxByteLength)
                throw new ModelFormatException(path, name, $"shape {shapeText} has a dimension past {MaxByteLength}");
        }
        foreach (long dimension in shape)
        {
            if (dimension != 0 && bytes > MaxByteLength / dimension)
                throw new ModelFormatException(path, name,
                    $"shape {shapeText} of {dtype} takes more than {MaxByteLength} bytes (2 GiB), the most a tensor may have here");
            bytes *= dimension;
        }
        return bytes;
    }
}
