using System.Text;

namespace FtpCluster.Compute.Tests.Models;

/// <summary>
/// GGUF bytes written field by field, independently of the project's writer, with nothing checked: a
/// test builds exactly the (possibly broken) file it means to.
/// </summary>
internal sealed class RawGguf
{
    public const uint Magic = 0x46554747;
    public const uint F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30;
    public const uint TypeUInt32 = 4, TypeString = 8, TypeArray = 9;

    private readonly List<byte> _bytes = [];

    public long Length => _bytes.Count;

    public RawGguf Header(ulong tensors, ulong metadata, uint version = 3, uint magic = Magic) =>
        UInt32(magic).UInt32(version).UInt64(tensors).UInt64(metadata);

    public RawGguf UInt32(uint value) => Bytes(BitConverter.GetBytes(value));

    public RawGguf UInt64(ulong value) => Bytes(BitConverter.GetBytes(value));

    public RawGguf Bytes(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    public RawGguf String(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        return UInt64((ulong)bytes.Length).Bytes(bytes);
    }

    public RawGguf KeyString(string key, string value) => String(key).UInt32(TypeString).String(value);

    public RawGguf KeyUInt32(string key, uint value) => String(key).UInt32(TypeUInt32).UInt32(value);

    /// <summary>A tensor info; <paramref name="dims"/> innermost first, as GGUF lists them.</summary>
    public RawGguf Tensor(string name, ulong[] dims, uint type, ulong offset)
    {
        String(name).UInt32((uint)dims.Length);
        foreach (ulong d in dims)
            UInt64(d);
        return UInt32(type).UInt64(offset);
    }

    public RawGguf PadTo(int alignment) => Bytes(new byte[(alignment - _bytes.Count % alignment) % alignment]);

    public void Save(string path) => File.WriteAllBytes(path, [.. _bytes]);

    /// <summary>
    /// A valid file to start from: one metadata key and one F32 tensor "a" of 8 elements, 1..8, at offset 0;
    /// <paramref name="tensorInfo"/> replaces the tensor info and <paramref name="dataBytes"/> the data length.
    /// </summary>
    public static RawGguf Minimal(Action<RawGguf>? tensorInfo = null, int dataBytes = 32, ulong tensors = 1)
    {
        var gguf = new RawGguf().Header(tensors, 1).KeyString("general.architecture", "llama");
        if (tensorInfo is null)
            gguf.Tensor("a", [8], F32, 0);
        else
            tensorInfo(gguf);
        gguf.PadTo(32);
        for (int i = 0; i < dataBytes / 4; i++)
            gguf.Bytes(BitConverter.GetBytes((float)(i + 1)));
        return gguf;
    }
}
