using System.Buffers.Binary;
using System.Text.Json;

namespace FtpCluster.Compute.Models;

/// <summary>
/// Streams a .safetensors file: the header (from names and shapes) first, then the values of each
/// tensor in the order given, in chunks of any size, so no tensor is ever whole in memory.
/// </summary>
internal sealed class SafetensorsWriter : IDisposable
{
    private readonly FileStream _stream;
    private readonly TensorDType _dtype;
    private readonly long _dataBytes;
    private long _written;
    private byte[] _encoded = [];

    private SafetensorsWriter(FileStream stream, TensorDType dtype, long dataBytes)
    {
        _stream = stream;
        _dtype = dtype;
        _dataBytes = dataBytes;
    }

    public static SafetensorsWriter Create(string path, TensorDType dtype, IReadOnlyList<(string Name, long[] Shape)> tensors)
    {
        using var headerJson = new MemoryStream();
        long offset = 0;
        using (var json = new Utf8JsonWriter(headerJson))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            json.WriteEndObject();
            foreach (var (name, shape) in tensors)
            {
                long bytes = shape.Aggregate(1L, (a, b) => a * b) * dtype.Size();
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (long d in shape)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }

        // Spaces pad the header so the data starts 8-byte aligned, as the reference writer does.
        int padding = (int)((8 - headerJson.Length % 8) % 8);
        headerJson.Write(Enumerable.Repeat((byte)' ', padding).ToArray());
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerJson.Length);
        stream.Write(length);
        headerJson.Position = 0;
        headerJson.CopyTo(stream);
        return new SafetensorsWriter(stream, dtype, offset);
    }

    /// <summary>The next values, continuing the current tensor or starting the next one.</summary>
    public void Write(ReadOnlySpan<float> values)
    {
        int byteCount = values.Length * _dtype.Size();
        if (_written + byteCount > _dataBytes)
            throw new InvalidOperationException($"{_stream.Name}: more values written than the header declares");
        if (_encoded.Length < byteCount)
            _encoded = new byte[byteCount];
        var encoded = _encoded.AsSpan(0, byteCount);
        WeightEncoding.Encode(values, _dtype, encoded);
        _stream.Write(encoded);
        _written += byteCount;
    }

    /// <summary>Checks that every declared value was written and flushes the file.</summary>
    public void Complete()
    {
        if (_written != _dataBytes)
            throw new InvalidOperationException($"{_stream.Name}: {_written} of {_dataBytes} data bytes written");
        _stream.Flush();
    }

    public void Dispose() => _stream.Dispose();
}
