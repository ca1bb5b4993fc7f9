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
        ElementCount = CheckedElementCount(file.Path, name, shape);
        if (dtype.IsQuantized() && shape[^1] % dtype.BlockSize() != 0)
            throw new ModelFormatException(file.Path, name,
                $"{dtype} stores rows in blocks of {dtype.BlockSize()}, but the rows hold {shape[^1]} elements; {dtype} needs a row length (columns) that is a multiple of {dtype.BlockSize()}");
        ByteLength = dtype.ByteCount(ElementCount);
        if (ByteLength > MaxByteLength)
            throw new ModelFormatException(file.Path, name,
                $"shape {ShapeText} of {dtype} takes {ByteLength} bytes, more than {MaxByteLength} (2 GiB), the most a tensor may have here");
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

    /// <summary>Elements [start, start + destination.Length) converted to float32 (dequantized for a quantized type).</summary>
    public void CopyTo(Span<float> destination, long start = 0)
    {
        if (start < 0 || start > ElementCount - destination.Length)
            throw new ArgumentOutOfRangeException(nameof(start));
        int block = DType.BlockSize();
        if (start % block == 0 && destination.Length % block == 0)
        {
            Convert(start, destination);
            return;
        }
        // A range that cuts blocks: widen the blocks it touches, keep the part asked for.
        long first = start / block * block;
        long end = (start + destination.Length + block - 1) / block * block;
        var widened = new float[end - first];
        Convert(first, widened);
        widened.AsSpan((int)(start - first), destination.Length).CopyTo(destination);
    }

    private void Convert(long start, Span<float> destination)
    {
        byte* p = _file.At(_offset + DType.ByteCount(start));
        Kernels.Cpu.WeightConvert.ToSingle(new ReadOnlySpan<byte>(p, checked((int)DType.ByteCount(destination.Length))), DType, destination);
    }

    public float[] ToFloatArray()
    {
        var a = new float[checked((int)ElementCount)];
        CopyTo(a);
        return a;
    }

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    /// <summary>The tensor's element count, refused when a dimension is negative or the count is past <see cref="MaxByteLength"/>
    /// (no element type is smaller than a byte, so a larger count is a larger tensor still).</summary>
    private static long CheckedElementCount(string path, string name, long[] shape)
    {
        string shapeText = "[" + string.Join(", ", shape) + "]";
        if (shape.Any(d => d < 0))
            throw new ModelFormatException(path, name, $"shape {shapeText} has a negative dimension");
        long elements = 1;
        foreach (long dimension in shape)
        {
            // A zero dimension makes the tensor empty, but its other dimensions still become row and column counts.
            if (dimension > MaxByteLength || (dimension != 0 && elements > MaxByteLength / dimension))
                throw new ModelFormatException(path, name,
                    $"shape {shapeText} has more than {MaxByteLength} elements (2 GiB), the most a tensor may have here");
            elements *= dimension;
        }
        return elements;
    }
}
