using System.Text;

namespace FtpCluster.Compute.Models;

/// <summary>A tensor for <see cref="GgufWriter"/>: its name, row-major shape ([rows, cols] for a matrix) and storage type.</summary>
public sealed record GgufTensorSpec(string Name, long[] Shape, TensorDType DType)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long ByteLength => DType.ByteCount(ElementCount);
}

/// <summary>
/// Streams a GGUF v3 file (layout in <see cref="GgufFile"/>): the header, metadata and tensor infos first,
/// then the values of each tensor in the order given, in chunks of any size, each tensor padded to the
/// alignment, so no tensor is ever whole in memory. The alignment is the metadata's
/// <c>general.alignment</c> when given, otherwise GGUF's default of 32.
/// </summary>
public sealed class GgufWriter : IDisposable
{
    private const uint Version = 3;

    private readonly FileStream _stream;
    private readonly IReadOnlyList<GgufTensorSpec> _tensors;
    private readonly int _alignment;
    private int _tensor;
    private long _writtenInTensor;
    private byte[] _encoded = [];

    private GgufWriter(FileStream stream, IReadOnlyList<GgufTensorSpec> tensors, int alignment)
    {
        _stream = stream;
        _tensors = tensors;
        _alignment = alignment;
    }

    public static GgufWriter Create(string path, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorSpec> tensors)
    {
        int alignment = AlignmentOf(metadata);
        var duplicate = tensors.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new ArgumentException($"tensor '{duplicate.Key}' is listed twice", nameof(tensors));

        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        try
        {
            using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(GgufFile.Magic);
                writer.Write(Version);
                writer.Write((ulong)tensors.Count);
                writer.Write((ulong)metadata.Count);
                foreach (var (key, value) in metadata)
                {
                    WriteString(writer, key);
                    writer.Write((uint)value.Type);
                    WriteValue(writer, key, value);
                }
                long offset = 0;
                foreach (var tensor in tensors)
                {
                    WriteString(writer, tensor.Name);
                    writer.Write((uint)tensor.Shape.Length);
                    // GGUF lists dimensions innermost first.
                    for (int d = tensor.Shape.Length - 1; d >= 0; d--)
                        writer.Write((ulong)tensor.Shape[d]);
                    writer.Write((uint)tensor.DType.ToGgmlType());
                    writer.Write((ulong)offset);
                    offset = AlignUp(offset + tensor.ByteLength, alignment);
                }
            }
            WritePadding(stream, alignment);
            return new GgufWriter(stream, tensors, alignment);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The next values, continuing the current tensor and going on into the next ones. A quantized tensor
    /// (Q8_0) takes whole blocks: what reaches it in one call must be a multiple of its block size.
    /// </summary>
    public void Write(ReadOnlySpan<float> values)
    {
        while (values.Length > 0)
        {
            if (_tensor == _tensors.Count)
                throw new InvalidOperationException($"{_stream.Name}: more values written than the tensors declare");
            var tensor = _tensors[_tensor];
            int count = (int)Math.Min(values.Length, tensor.ElementCount - _writtenInTensor);
            int byteCount = (int)tensor.DType.ByteCount(count);
            if (_encoded.Length < byteCount)
                _encoded = new byte[byteCount];
            WeightEncoding.Encode(values[..count], tensor.DType, _encoded.AsSpan(0, byteCount));
            _stream.Write(_encoded, 0, byteCount);
            values = values[count..];
            _writtenInTensor += count;
            if (_writtenInTensor == tensor.ElementCount)
            {
                // The last tensor is padded too, as llama.cpp's writer does.
                WritePadding(_stream, _alignment);
                _tensor++;
                _writtenInTensor = 0;
            }
        }
    }

    /// <summary>Checks that every declared value was written and flushes the file.</summary>
    public void Complete()
    {
        if (_tensor != _tensors.Count)
            throw new InvalidOperationException($"{_stream.Name}: tensor '{_tensors[_tensor].Name}' has {_writtenInTensor} of its {_tensors[_tensor].ElementCount} values");
        _stream.Flush();
    }

    public void Dispose() => _stream.Dispose();

    private static int AlignmentOf(IReadOnlyList<KeyValuePair<string, GgufValue>> metadata)
    {
        var entry = metadata.FirstOrDefault(kv => kv.Key == GgufFile.AlignmentKey).Value;
        if (entry is null)
            return GgufFile.DefaultAlignment;
        return entry.Value is uint alignment && alignment > 0 && uint.IsPow2(alignment)
            ? (int)alignment
            : throw new ArgumentException($"{GgufFile.AlignmentKey} must be a uint32 power of two, got {entry} ({entry.TypeName})", nameof(metadata));
    }

    private static long AlignUp(long position, int alignment) => (position + alignment - 1) / alignment * alignment;

    private static void WritePadding(FileStream stream, int alignment)
    {
        long padding = AlignUp(stream.Position, alignment) - stream.Position;
        for (long i = 0; i < padding; i++)
            stream.WriteByte(0);
    }

    private static void WriteString(BinaryWriter writer, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static void WriteValue(BinaryWriter writer, string key, GgufValue value)
    {
        switch (value.Type, value.Value)
        {
            case (GgufValueType.UInt8, byte v): writer.Write(v); break;
            case (GgufValueType.Int8, sbyte v): writer.Write(v); break;
            case (GgufValueType.UInt16, ushort v): writer.Write(v); break;
            case (GgufValueType.Int16, short v): writer.Write(v); break;
            case (GgufValueType.UInt32, uint v): writer.Write(v); break;
            case (GgufValueType.Int32, int v): writer.Write(v); break;
            case (GgufValueType.Float32, float v): writer.Write(v); break;
            case (GgufValueType.Bool, bool v): writer.Write(v); break;
            case (GgufValueType.String, string v): WriteString(writer, v); break;
            case (GgufValueType.UInt64, ulong v): writer.Write(v); break;
            case (GgufValueType.Int64, long v): writer.Write(v); break;
            case (GgufValueType.Float64, double v): writer.Write(v); break;
            case (GgufValueType.Array, Array elements) when value.ElementType is { } elementType:
                writer.Write((uint)elementType);
                writer.Write((ulong)elements.Length);
                foreach (object element in elements)
                {
                    var item = element as GgufValue ?? new GgufValue(elementType, element);
                    if (item.Type != elementType)
                        throw new ArgumentException($"metadata key '{key}': an array of {GgufValue.Name(elementType)} holds a {item.TypeName}");
                    WriteValue(writer, key, item);
                }
                break;
            default:
                throw new ArgumentException($"metadata key '{key}': a {value.Value.GetType().Name} is not a GGUF {value.TypeName}");
        }
    }
}
