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
        ElementCount = shape.Aggregate(1L, (a, b) => a * b);
        ByteLength = ElementCount * dtype.Size();
        if (offset < 0 || offset + ByteLength > file.Length)
            throw new ModelFormatException(file.Path, name,
                $"data [{offset}, {offset + ByteLength}) lies beyond the end of the file ({file.Length} bytes): the file is truncated");
    }

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
        if (start < 0 || start + destination.Length > ElementCount)
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
}
