using System.Globalization;

namespace FtpCluster.Compute.Models;

/// <summary>The type of a GGUF metadata value, numbered as in gguf.h.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// One metadata value. <see cref="Value"/> is the matching CLR value: byte, sbyte, ushort, short, uint,
/// int, float, bool, string, ulong, long or double; an array is a CLR array of those (byte[], string[], ...),
/// or a <see cref="GgufValue"/>[] of arrays when arrays nest, with <see cref="ElementType"/> saying which.
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType? ElementType = null)
{
    /// <summary>The value as an integer when it is one of the integer types and fits a long; otherwise null.</summary>
    public long? AsInteger() => Value switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        long v => v,
        ulong v when v <= long.MaxValue => (long)v,
        _ => null,
    };

    /// <summary>The value as a number when it is a float or an integer type; otherwise null.</summary>
    public double? AsNumber() => Value switch
    {
        float v => v,
        double v => v,
        _ => AsInteger(),
    };

    /// <summary>The type as written in messages: "uint32", "string", "array of float32".</summary>
    public string TypeName => Type != GgufValueType.Array ? Name(Type)
        : ElementType is { } element ? $"array of {Name(element)}" : "array";

    public override string ToString() => Value switch
    {
        string s => s,
        Array a => $"[{a.Length} elements]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };

    internal static string Name(GgufValueType type) => type.ToString().ToLowerInvariant();
}

/// <summary>
/// The key/value metadata of a GGUF file, with readers that check types and report a missing or
/// mistyped key as a <see cref="ModelFormatException"/> naming the file and the key.
/// </summary>
public sealed class GgufMetadata
{
    private readonly Dictionary<string, GgufValue> _values;

    internal GgufMetadata(string path, Dictionary<string, GgufValue> values)
    {
        Path = path;
        _values = values;
    }

    /// <summary>The file the metadata came from, for messages.</summary>
    public string Path { get; }

    public IReadOnlyDictionary<string, GgufValue> Values => _values;

    public bool Contains(string key) => _values.ContainsKey(key);

    public GgufValue? Find(string key) => _values.GetValueOrDefault(key);

    /// <summary>A string value, or null when the key is absent.</summary>
    public string? String(string key) => Find(key) is { } v ? v.Value as string ?? throw WrongType(key, v, "a string") : null;

    /// <summary>An integer value of any integer type, or null when the key is absent.</summary>
    public long? Integer(string key) => Find(key) is { } v ? v.AsInteger() ?? throw WrongType(key, v, "an integer") : null;

    /// <summary>A number of any float or integer type, or null when the key is absent.</summary>
    public double? Number(string key) => Find(key) is { } v ? v.AsNumber() ?? throw WrongType(key, v, "a number") : null;

    public bool? Bool(string key) => Find(key) is { } v ? v.Value as bool? ?? throw WrongType(key, v, "a bool") : null;

    /// <summary>An array whose elements are <typeparamref name="T"/> (e.g. string[] for an array of strings), or null when the key is absent.</summary>
    public T[]? Array<T>(string key) => Find(key) is { } v ? v.Value as T[] ?? throw WrongType(key, v, $"an array of {typeof(T).Name}") : null;

    public string RequiredString(string key) => String(key) ?? throw Missing(key);

    public long RequiredInteger(string key) => Integer(key) ?? throw Missing(key);

    public double RequiredNumber(string key) => Number(key) ?? throw Missing(key);

    /// <summary>A required integer that must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int RequiredInt(string key, int min = 1, int max = int.MaxValue) => CheckRange(key, RequiredInteger(key), min, max);

    /// <summary>An optional integer that, when present, must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int? OptionalInt(string key, int min = 1, int max = int.MaxValue) =>
        Integer(key) is { } value ? CheckRange(key, value, min, max) : null;

    private int CheckRange(string key, long value, int min, int max) =>
        value >= min && value <= max ? (int)value
            : throw new ModelFormatException(Path, null, $"metadata key '{key}' is {value}, outside [{min}, {max}]");

    private ModelFormatException Missing(string key) =>
        new(Path, null, $"missing required metadata key '{key}'");

    private ModelFormatException WrongType(string key, GgufValue value, string expected) =>
        new(Path, null, $"metadata key '{key}' is {value.TypeName}, expected {expected}");
}
