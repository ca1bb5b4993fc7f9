using System.Buffers.Binary;
using System.Text.Json;

namespace FtpCluster.Compute.Models;

/// <summary>
/// One memory-mapped .safetensors file: an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}</c>), then the data,
/// with offsets relative to its start. Opening checks the whole header; tensors are views into the map.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private const int LengthPrefixBytes = 8;

    /// <summary>The limit the reference implementation puts on headers, so a corrupt length fails fast.</summary>
    private const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private static readonly Dictionary<string, TensorDType> DTypesByName =
        Enum.GetValues<TensorDType>().Where(t => !t.IsQuantized()).ToDictionary(t => t.SafetensorsName());

    private readonly MappedFile _file;

    private SafetensorsFile(MappedFile file, Dictionary<string, WeightTensor> tensors, Dictionary<string, string> metadata)
    {
        _file = file;
        Tensors = tensors;
        Metadata = metadata;
    }

    public string Path => _file.Path;
    public IReadOnlyDictionary<string, WeightTensor> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static SafetensorsFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var (tensors, metadata) = ReadHeader(file);
            return new SafetensorsFile(file, tensors, metadata);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, WeightTensor>, Dictionary<string, string>) ReadHeader(MappedFile file)
    {
        string path = file.Path;
        if (file.Length < LengthPrefixBytes)
            throw new ModelFormatException(path, null, $"file is truncated: {file.Length} bytes, shorter than the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Span(0, LengthPrefixBytes));
        if (headerLength > (ulong)(file.Length - LengthPrefixBytes))
            throw new ModelFormatException(path, null,
                $"header length {headerLength} runs beyond the end of the file ({file.Length} bytes): the file is truncated or not safetensors");
        if (headerLength > MaxHeaderBytes)
            throw new ModelFormatException(path, null, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit: not a safetensors file");

        using var header = ModelJson.Parse(path, file.Span(LengthPrefixBytes, (int)headerLength).ToArray(), "header");
        var root = header.RootElement.AsObject(path, "header");
        long dataStart = LengthPrefixBytes + (long)headerLength;
        var tensors = new Dictionary<string, WeightTensor>();
        var metadata = new Dictionary<string, string>();
        foreach (var entry in root.EnumerateObject())
        {
            if (entry.Name == MetadataKey)
            {
                foreach (var item in entry.Value.AsObject(path, MetadataKey).EnumerateObject())
                    metadata[item.Name] = item.Value.AsString(path, $"{MetadataKey}.{item.Name}");
            }
            else
            {
                tensors[entry.Name] = ReadTensor(file, dataStart, entry.Name, entry.Value);
            }
        }
        return (tensors, metadata);
    }

    private static WeightTensor ReadTensor(MappedFile file, long dataStart, string name, JsonElement entry)
    {
        string path = file.Path;
        entry.AsObject(path, "tensor entry", name);

        string dtypeName = entry.Required(path, "dtype", name).AsString(path, "dtype", name);
        if (!DTypesByName.TryGetValue(dtypeName, out var dtype))
            throw new ModelFormatException(path, name, $"dtype '{dtypeName}' is not supported (supported: {string.Join(", ", DTypesByName.Keys)})");

        var shapeArray = entry.Required(path, "shape", name).AsArray(path, "shape", name);
        var shape = shapeArray.EnumerateArray().Select(d => d.AsLong(path, "shape", name)).ToArray();
        long byteCount = dtype.Size();
        foreach (long d in shape)
        {
            if (d < 0 || (d > 0 && byteCount > long.MaxValue / d))
                throw new ModelFormatException(path, name, $"shape {shapeArray.GetRawText()} is not a valid tensor shape");
            byteCount *= d;
        }

        var offsets = entry.Required(path, "data_offsets", name).AsArray(path, "data_offsets", name);
        if (offsets.GetArrayLength() != 2)
            throw new ModelFormatException(path, name, $"data_offsets must be [begin, end], got {offsets.GetRawText()}");
        long begin = offsets[0].AsLong(path, "data_offsets", name), end = offsets[1].AsLong(path, "data_offsets", name);
        if (begin < 0 || end < begin)
            throw new ModelFormatException(path, name, $"data_offsets [{begin}, {end}] is not a range");
        if (end - begin != byteCount)
            throw new ModelFormatException(path, name,
                $"data_offsets [{begin}, {end}] hold {end - begin} bytes, but shape {shapeArray.GetRawText()} of {dtypeName} needs {byteCount}");

        long dataBytes = file.Length - dataStart;
        if (begin > dataBytes || byteCount > dataBytes - begin)
            throw new ModelFormatException(path, name,
                $"data_offsets [{begin}, {end}] lie beyond the end of the data section ({dataBytes} bytes): the file is truncated or damaged");
        return new WeightTensor(name, file, dataStart + begin, dtype, shape);
    }

    public void Dispose() => _file.Dispose();
}
