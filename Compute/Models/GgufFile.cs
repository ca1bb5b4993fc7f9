using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace FtpCluster.Compute.Models;

/// <summary>
/// A tensor listed in a GGUF file. <see cref="Shape"/> is row-major, outermost first, as in
/// <see cref="WeightTensor"/> (a matrix is [rows, cols]); the file lists the dimensions the other way
/// round (ggml's ne0 = cols first). <see cref="Offset"/> is from the start of the file.
/// </summary>
public sealed record GgufTensorInfo(string Name, long[] Shape, GgmlType Type, long Offset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A memory-mapped GGUF file, version 2 or 3 (little-endian): the magic "GGUF", a uint32 version, uint64
/// tensor and metadata counts, the metadata (key string, uint32 value type, value), the tensor infos
/// (name, uint32 dimension count, uint64 dimensions innermost first, uint32 ggml type, uint64 offset into
/// the data section), then the data section, which starts at the next multiple of
/// <c>general.alignment</c> (32 by default). Strings are a uint64 byte length and UTF-8 bytes; arrays are
/// a uint32 element type, a uint64 count and the elements.
/// </summary>
/// <remarks>
/// Opening reads and checks every header field before anything else touches the file, so a damaged or
/// crafted file is a <see cref="ModelFormatException"/> naming the file and the key or tensor at fault,
/// never an overflow or an allocation the file cannot back: every count and length is checked against the
/// bytes left in the file before anything is allocated (each element takes at least one byte), strings
/// are limited to <see cref="MaxStringBytes"/>, arrays nest at most <see cref="MaxArrayNesting"/> deep, and
/// every tensor must be of a known ggml type, aligned, and lie inside the file. Tensor data stays on disk
/// until it is touched.
/// </remarks>
public sealed class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;

    public const string AlignmentKey = "general.alignment";
    public const int DefaultAlignment = 32;

    /// <summary>
    /// The longest string accepted (1 MiB): far above any real key, token or chat template (tens of
    /// kilobytes at most), far below what would hurt to hold.
    /// </summary>
    public const int MaxStringBytes = 1 << 20;

    /// <summary>ggml's GGML_MAX_DIMS.</summary>
    public const int MaxDimensions = 4;

    /// <summary>How deep arrays of arrays may nest; nothing real nests at all, and the reader recurses.</summary>
    public const int MaxArrayNesting = 8;

    /// <summary>Magic, version, tensor count, metadata count.</summary>
    private const int HeaderBytes = 4 + 4 + 8 + 8;

    /// <summary>The smallest a metadata entry can be: an empty key's length, the value type, a one-byte value.</summary>
    private const int MinMetadataEntryBytes = 8 + 4 + 1;

    /// <summary>The smallest a tensor info can be: an empty name's length, one dimension, the type, the offset.</summary>
    private const int MinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

    private readonly MappedFile _file;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;

    private GgufFile(MappedFile file, uint version, GgufMetadata metadata, int alignment, long dataStart, List<GgufTensorInfo> tensors)
    {
        _file = file;
        Version = version;
        Metadata = metadata;
        Alignment = alignment;
        DataStart = dataStart;
        Tensors = tensors;
        _tensorsByName = tensors.ToDictionary(t => t.Name);
    }

    public string Path => _file.Path;
    public uint Version { get; }
    public GgufMetadata Metadata { get; }
    public int Alignment { get; }

    /// <summary>Where the data section starts; tensor offsets in the file are relative to it.</summary>
    public long DataStart { get; }

    /// <summary>Every tensor, in the order the file lists them.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    /// <summary>Whether the file at <paramref name="path"/> starts with the GGUF magic.</summary>
    public static bool HasMagic(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var stream = File.OpenRead(path);
        return stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && BinaryPrimitives.ReadUInt32LittleEndian(magic) == Magic;
    }

    public static GgufFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            return Parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The tensor as a <see cref="WeightTensor"/> over the mapped file (quantized blocks stay as the file
    /// stores them); a type the kernels cannot read is a <see cref="ModelFormatException"/> naming the
    /// tensor and its type.
    /// </summary>
    public WeightTensor Weight(GgufTensorInfo tensor)
    {
        var dtype = tensor.Type.ToTensorDType()
            ?? throw new ModelFormatException(Path, tensor.Name, $"tensor is {tensor.Type}; this build reads GGUF tensors stored as {GgmlTypeExtensions.ReadableNames}");
        return new WeightTensor(tensor.Name, _file, tensor.Offset, dtype, tensor.Shape);
    }

    public void Dispose() => _file.Dispose();

    private static GgufFile Parse(MappedFile file)
    {
        var reader = new Reader(file);
        string path = file.Path;
        if (file.Length < 4)
            throw new ModelFormatException(path, null, $"file is truncated: {file.Length} bytes, shorter than the {HeaderBytes}-byte GGUF header");
        uint magic = reader.UInt32();
        if (magic != Magic)
            throw new ModelFormatException(path, null, $"not a GGUF file: it starts with 0x{magic:X8}, not the magic \"GGUF\"");
        if (file.Length < HeaderBytes)
            throw new ModelFormatException(path, null, $"file is truncated: {file.Length} bytes, shorter than the {HeaderBytes}-byte GGUF header");
        uint version = reader.UInt32();
        CheckVersion(path, version);

        ulong tensorCount = reader.UInt64();
        ulong metadataCount = reader.UInt64();
        long remaining = file.Length - HeaderBytes;
        if (metadataCount > (ulong)(remaining / MinMetadataEntryBytes))
            throw new ModelFormatException(path, null, $"metadata count {metadataCount} cannot fit in the {remaining} bytes after the header");
        if (tensorCount > (ulong)(remaining / MinTensorInfoBytes))
            throw new ModelFormatException(path, null, $"tensor count {tensorCount} cannot fit in the {remaining} bytes after the header");

        var values = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        for (ulong i = 0; i < metadataCount; i++)
        {
            reader.Context = $"metadata entry {i}";
            string key = reader.String();
            reader.Context = $"metadata key '{key}'";
            var value = reader.Value(reader.ValueType(), depth: 0);
            if (!values.TryAdd(key, value))
                throw reader.Error("appears twice");
        }
        var metadata = new GgufMetadata(path, values);
        int alignment = ReadAlignment(metadata);

        var infos = new List<(string Name, long[] Shape, GgmlType Type, ulong Offset, long Bytes)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            reader.Context = $"tensor info {i}";
            string name = reader.String();
            reader.Context = $"tensor info {i} ('{name}')";
            if (!names.Add(name))
                throw new ModelFormatException(path, name, "tensor name appears twice");
            var info = ReadTensorInfo(reader, name);
            infos.Add(info);
        }

        long dataStart = AlignUp(reader.Position, alignment);
        var tensors = infos.Select(t => PlaceTensor(file, dataStart, alignment, t)).ToList();
        return new GgufFile(file, version, metadata, alignment, dataStart, tensors);
    }

    private static void CheckVersion(string path, uint version)
    {
        if (version is 2 or 3)
            return;
        string why = version switch
        {
            1 => "GGUF version 1 is not supported (only 2 and 3): convert the file again with a current llama.cpp",
            0x02000000 or 0x03000000 => $"the version field reads {version}: this is a big-endian GGUF file, and only little-endian files are supported",
            _ => $"GGUF version {version} is not supported (only 2 and 3)",
        };
        throw new ModelFormatException(path, null, why);
    }

    private static int ReadAlignment(GgufMetadata metadata)
    {
        if (metadata.Find(AlignmentKey) is not { } value)
            return DefaultAlignment;
        long? alignment = value.AsInteger();
        if (alignment is not > 0 || alignment > 1 << 30 || !long.IsPow2(alignment.Value))
            throw new ModelFormatException(metadata.Path, null, $"metadata key '{AlignmentKey}' is {value} ({value.TypeName}), not a power of two up to 2^30");
        return (int)alignment.Value;
    }

    private static (string, long[], GgmlType, ulong, long) ReadTensorInfo(Reader reader, string name)
    {
        string path = reader.Path;
        uint dimensionCount = reader.UInt32();
        if (dimensionCount is 0 or > MaxDimensions)
            throw new ModelFormatException(path, name, $"has {dimensionCount} dimensions; GGUF tensors have 1 to {MaxDimensions}");
        var dimensions = new long[dimensionCount];
        long elements = 1;
        for (int d = 0; d < dimensionCount; d++)
        {
            ulong size = reader.UInt64();
            if (size == 0 || size > long.MaxValue || elements > long.MaxValue / (long)size)
                throw new ModelFormatException(path, name, $"dimension {d} is {size}: the dimensions must be positive and their product must fit in 63 bits");
            dimensions[d] = (long)size;
            elements *= (long)size;
        }

        uint typeId = reader.UInt32();
        if (!GgmlTypeExtensions.IsKnown(typeId))
            throw new ModelFormatException(path, name, $"ggml type {typeId} is unknown (known: {GgmlTypeExtensions.KnownNames})");
        var type = (GgmlType)typeId;
        var layout = type.Layout();
        if (dimensions[0] % layout.BlockSize != 0)
            throw new ModelFormatException(path, name,
                $"row length {dimensions[0]} is not a multiple of the {type} block size {layout.BlockSize}");
        long blocks = elements / layout.BlockSize;
        if (blocks > long.MaxValue / layout.BlockBytes)
            throw new ModelFormatException(path, name, $"{elements} elements of {type} do not fit in 63 bits of bytes");
        ulong offset = reader.UInt64();

        Array.Reverse(dimensions);
        return (name, dimensions, type, offset, blocks * layout.BlockBytes);
    }

    private static GgufTensorInfo PlaceTensor(MappedFile file, long dataStart, int alignment,
        (string Name, long[] Shape, GgmlType Type, ulong Offset, long Bytes) t)
    {
        if (t.Offset % (ulong)alignment != 0)
            throw new ModelFormatException(file.Path, t.Name, $"data offset {t.Offset} is not a multiple of the file's alignment {alignment}");
        long room = file.Length - dataStart;
        if (t.Offset > (ulong)Math.Max(room, 0) || t.Bytes > room - (long)t.Offset)
            throw new ModelFormatException(file.Path, t.Name,
                $"data [{t.Offset}, {t.Offset} + {t.Bytes}) of the data section (which starts at byte {dataStart}) runs past the end of the file ({file.Length} bytes): the file is truncated");
        return new GgufTensorInfo(t.Name, t.Shape, t.Type, dataStart + (long)t.Offset, t.Bytes);
    }

    private static long AlignUp(long position, int alignment) => (position + alignment - 1) / alignment * alignment;

    /// <summary>Reads little-endian values in sequence, every read checked against the end of the file.</summary>
    private sealed class Reader(MappedFile file)
    {
        public string Path => file.Path;
        public long Position { get; private set; }

        /// <summary>What is being read, for messages: "metadata key 'general.name'".</summary>
        public string Context { get; set; } = "header";

        private long Remaining => file.Length - Position;

        public ModelFormatException Error(string problem) => new(file.Path, null, $"{Context}: {problem}");

        private ReadOnlySpan<byte> Take(long count)
        {
            if (count > Remaining)
                throw Error($"needs {count} bytes at byte {Position}, but the file ends at byte {file.Length}: the file is truncated");
            var span = file.Span(Position, (int)count);
            Position += count;
            return span;
        }

        public uint UInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

        public ulong UInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

        public GgufValueType ValueType()
        {
            uint type = UInt32();
            if (type > (uint)GgufValueType.Float64)
                throw Error($"value type {type} is unknown (GGUF value types are 0 to {(uint)GgufValueType.Float64})");
            return (GgufValueType)type;
        }

        public string String()
        {
            ulong length = UInt64();
            if (length > (ulong)Remaining)
                throw Error($"string length {length} runs past the end of the file ({Remaining} bytes are left)");
            if (length > MaxStringBytes)
                throw Error($"string length {length} exceeds the {MaxStringBytes}-byte limit");
            return Encoding.UTF8.GetString(Take((long)length));
        }

        public GgufValue Value(GgufValueType type, int depth) => type switch
        {
            GgufValueType.UInt8 => new(type, Take(1)[0]),
            GgufValueType.Int8 => new(type, (sbyte)Take(1)[0]),
            GgufValueType.UInt16 => new(type, BinaryPrimitives.ReadUInt16LittleEndian(Take(2))),
            GgufValueType.Int16 => new(type, BinaryPrimitives.ReadInt16LittleEndian(Take(2))),
            GgufValueType.UInt32 => new(type, UInt32()),
            GgufValueType.Int32 => new(type, BinaryPrimitives.ReadInt32LittleEndian(Take(4))),
            GgufValueType.Float32 => new(type, BinaryPrimitives.ReadSingleLittleEndian(Take(4))),
            GgufValueType.Bool => new(type, Bool(Take(1)[0])),
            GgufValueType.String => new(type, String()),
            GgufValueType.UInt64 => new(type, UInt64()),
            GgufValueType.Int64 => new(type, BinaryPrimitives.ReadInt64LittleEndian(Take(8))),
            GgufValueType.Float64 => new(type, BinaryPrimitives.ReadDoubleLittleEndian(Take(8))),
            _ => Array(depth),
        };

        private bool Bool(byte value) => value switch
        {
            0 => false,
            1 => true,
            _ => throw Error($"bool value {value} is neither 0 nor 1"),
        };

        private GgufValue Array(int depth)
        {
            if (depth >= MaxArrayNesting)
                throw Error($"arrays nest deeper than {MaxArrayNesting} levels");
            var elementType = ValueType();
            ulong count = UInt64();
            // Strings take at least their 8-byte length, arrays their type and count; so bounded, no
            // array can claim more elements than the file could hold.
            int minElementBytes = elementType switch
            {
                GgufValueType.String => 8,
                GgufValueType.Array => 12,
                _ => ElementSize(elementType),
            };
            if (count > (ulong)(Remaining / minElementBytes))
                throw Error($"array of {count} {GgufValue.Name(elementType)} runs past the end of the file ({Remaining} bytes are left)");
            if (count > (ulong)(int.MaxValue / minElementBytes))
                throw Error($"array of {count} {GgufValue.Name(elementType)} exceeds the 2 GiB this reader accepts");
            int n = (int)count;
            object elements = elementType switch
            {
                GgufValueType.UInt8 => Numbers<byte>(n),
                GgufValueType.Int8 => Numbers<sbyte>(n),
                GgufValueType.UInt16 => Numbers<ushort>(n),
                GgufValueType.Int16 => Numbers<short>(n),
                GgufValueType.UInt32 => Numbers<uint>(n),
                GgufValueType.Int32 => Numbers<int>(n),
                GgufValueType.Float32 => Numbers<float>(n),
                GgufValueType.UInt64 => Numbers<ulong>(n),
                GgufValueType.Int64 => Numbers<long>(n),
                GgufValueType.Float64 => Numbers<double>(n),
                GgufValueType.Bool => Enumerable.Range(0, n).Select(_ => Bool(Take(1)[0])).ToArray(),
                GgufValueType.String => Enumerable.Range(0, n).Select(_ => String()).ToArray(),
                _ => Enumerable.Range(0, n).Select(_ => Array(depth + 1)).ToArray(),
            };
            return new GgufValue(GgufValueType.Array, elements, elementType);
        }

        /// <summary>Numbers copied as bytes: GGUF is little-endian, as is every platform this runs on.</summary>
        private T[] Numbers<T>(int count) where T : unmanaged
        {
            var result = new T[count];
            Take(count * Unsafe.SizeOf<T>()).CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
            return result;
        }

        private static int ElementSize(GgufValueType type) => type switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            _ => 8,
        };
    }
}
