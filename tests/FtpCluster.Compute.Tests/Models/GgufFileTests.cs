using FtpCluster.Compute.Models;
using Xunit;
using static FtpCluster.Compute.Tests.Models.ModelTestFiles;

namespace FtpCluster.Compute.Tests.Models;

public sealed class GgufFileTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly int[] NestedFirst = [1, -2];
    private static readonly float[] Floats = [0.5f, -1f, 3f];
    private static readonly string[] Strings = ["a", "", "<s>"];
    private static readonly bool[] Bools = [false, true];

    private static GgufValue Scalar(GgufValueType type, object value) => new(type, value);

    [Fact]
    public void Metadata_of_every_value_type_and_tensors_read_back_as_written()
    {
        string path = _temp.File("all.gguf");
        var nested = new GgufValue(GgufValueType.Array, new[]
        {
            new GgufValue(GgufValueType.Array, NestedFirst, GgufValueType.Int32),
            new GgufValue(GgufValueType.Array, Array.Empty<int>(), GgufValueType.Int32),
        }, GgufValueType.Array);
        var metadata = new List<KeyValuePair<string, GgufValue>>
        {
            new("u8", Scalar(GgufValueType.UInt8, (byte)200)),
            new("i8", Scalar(GgufValueType.Int8, (sbyte)-100)),
            new("u16", Scalar(GgufValueType.UInt16, (ushort)60000)),
            new("i16", Scalar(GgufValueType.Int16, (short)-30000)),
            new("u32", Scalar(GgufValueType.UInt32, 4_000_000_000u)),
            new("i32", Scalar(GgufValueType.Int32, -2_000_000_000)),
            new("f32", Scalar(GgufValueType.Float32, 1.5f)),
            new("bool", Scalar(GgufValueType.Bool, true)),
            new("string", Scalar(GgufValueType.String, "héllo ▁wörld")),
            new("u64", Scalar(GgufValueType.UInt64, ulong.MaxValue)),
            new("i64", Scalar(GgufValueType.Int64, long.MinValue)),
            new("f64", Scalar(GgufValueType.Float64, Math.PI)),
            new("floats", new(GgufValueType.Array, Floats, GgufValueType.Float32)),
            new("strings", new(GgufValueType.Array, Strings, GgufValueType.String)),
            new("bools", new(GgufValueType.Array, Bools, GgufValueType.Bool)),
            new("nested", nested),
            new(GgufFile.AlignmentKey, Scalar(GgufValueType.UInt32, 64u)),
        };
        GgufTensorSpec[] tensors = [new("m", [3, 5], TensorDType.F16), new("v", [7], TensorDType.F32)];
        using (var writer = GgufWriter.Create(path, metadata, tensors))
        {
            writer.Write(Enumerable.Range(0, 15).Select(i => i * 0.25f).ToArray());
            writer.Write([1f, 2f, 3f, 4f, 5f, 6f, 7f]);
            writer.Complete();
        }

        using var file = GgufFile.Open(path);

        Assert.Equal(3u, file.Version);
        Assert.Equal(metadata.Select(kv => kv.Key).Order(), file.Metadata.Values.Keys.Order());
        foreach (var (key, expected) in metadata.Where(kv => kv.Key != "nested"))
        {
            var actual = file.Metadata.Find(key)!;
            Assert.Equal(expected.Type, actual.Type);
            Assert.Equal(expected.ElementType, actual.ElementType);
            Assert.Equal(expected.Value, actual.Value);
        }
        var readNested = file.Metadata.Array<GgufValue>("nested")!;
        Assert.Equal(GgufValueType.Array, file.Metadata.Find("nested")!.ElementType);
        Assert.Equal([1, -2], (int[])readNested[0].Value);
        Assert.Empty((int[])readNested[1].Value);
        Assert.Equal(4_000_000_000L, file.Metadata.Integer("u32"));
        Assert.Equal(Strings, file.Metadata.Array<string>("strings")!);

        Assert.Equal(64, file.Alignment);
        Assert.Equal(0, file.DataStart % 64);
        var m = file.FindTensor("m")!;
        Assert.Equal([3L, 5L], m.Shape);
        Assert.Equal(GgmlType.F16, m.Type);
        Assert.Equal(file.DataStart, m.Offset);
        Assert.Equal(file.DataStart + 64, file.FindTensor("v")!.Offset);
        Assert.Equal(Enumerable.Range(0, 15).Select(i => i * 0.25f), file.Weight(m).ToFloatArray());
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f, 7f], file.Weight(file.FindTensor("v")!).ToFloatArray());
    }

    [Fact]
    public void A_hand_built_version_2_file_reads_with_dimensions_reversed_and_values_of_known_bits()
    {
        string path = _temp.File("v2.gguf");
        new RawGguf().Header(tensors: 3, metadata: 1, version: 2)
            .KeyString("general.architecture", "llama")
            .Tensor("f32", [2, 1], RawGguf.F32, 0)   // shape [1, 2]
            .Tensor("f16", [3], RawGguf.F16, 32)
            .Tensor("bf16", [2], RawGguf.BF16, 64)
            .PadTo(32)
            .Bytes(0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x20, 0xC1).PadTo(32) // 1.5, -10
            .Bytes(0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38).PadTo(32)             // 1, -2, 0.5
            .Bytes(0xC0, 0x3F, 0x80, 0xBE)                                   // 1.5, -0.25
            .Save(path);

        using var file = GgufFile.Open(path);

        Assert.Equal(2u, file.Version);
        Assert.Equal(GgufFile.DefaultAlignment, file.Alignment);
        Assert.Equal([1L, 2L], file.FindTensor("f32")!.Shape);
        Assert.Equal([1.5f, -10f], file.Weight(file.FindTensor("f32")!).ToFloatArray());
        Assert.Equal([1f, -2f, 0.5f], file.Weight(file.FindTensor("f16")!).ToFloatArray());
        Assert.Equal([1.5f, -0.25f], file.Weight(file.FindTensor("bf16")!).ToFloatArray());
        Assert.Equal(["f32", "f16", "bf16"], file.Tensors.Select(t => t.Name));
    }

    [Theory]
    [InlineData(RawGguf.Q8_0, 64, 2, 2 * 2 * 34)]   // 2 rows of 2 blocks of 32
    [InlineData(12u, 256, 1, 144)]                 // Q4_K: one super-block
    [InlineData(14u, 512, 3, 3 * 2 * 210)]         // Q6_K
    [InlineData(6u, 32, 4, 4 * 22)]                // Q5_0
    [InlineData(10u, 256, 2, 2 * 84)]              // Q2_K: sized, but not read as a weight
    public void Quantized_tensors_are_sized_by_their_blocks_and_read_as_weights_when_the_kernels_have_the_type(uint type, ulong rowLength, ulong rows, long expectedBytes)
    {
        string path = _temp.File("quantized.gguf");
        var gguf = new RawGguf().Header(1, 1).KeyString("general.architecture", "llama")
            .Tensor("q", [rowLength, rows], type, 0).PadTo(32);
        gguf.Bytes(new byte[expectedBytes]).Save(path);

        using var file = GgufFile.Open(path);
        var tensor = file.FindTensor("q")!;

        Assert.Equal(expectedBytes, tensor.ByteLength);
        Assert.Equal((long)(rowLength * rows), tensor.ElementCount);
        if (((GgmlType)type).ToTensorDType() is not null)
            Assert.Equal(expectedBytes, file.Weight(tensor).ByteLength);
        else
            AssertFails(() => file.Weight(tensor), path, "tensor 'q'", $"is {(GgmlType)type}; this build reads GGUF tensors stored as F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K");

        string truncated = _temp.File("truncated.gguf");
        gguf = new RawGguf().Header(1, 1).KeyString("general.architecture", "llama").Tensor("q", [rowLength, rows], type, 0).PadTo(32);
        gguf.Bytes(new byte[expectedBytes - 1]).Save(truncated);
        AssertFails(() => GgufFile.Open(truncated), "tensor 'q'", "runs past the end of the file");
    }

    [Fact]
    public void A_file_shorter_than_the_header_is_truncated()
    {
        string path = _temp.File("short.gguf");
        new RawGguf().UInt32(RawGguf.Magic).UInt32(3).UInt64(0).Save(path);
        AssertFails(() => GgufFile.Open(path), path, "file is truncated: 16 bytes, shorter than the 24-byte GGUF header");
    }

    [Fact]
    public void A_file_cut_inside_the_metadata_names_the_key_being_read()
    {
        string path = _temp.File("cut.gguf");
        var gguf = RawGguf.Minimal();
        gguf.Save(path);
        Truncate(path, new FileInfo(path).Length - 60); // 24 header bytes, 28 of the key, 4 of the type: inside the value
        AssertFails(() => GgufFile.Open(path), "metadata key 'general.architecture'", "the file is truncated");
    }

    [Fact]
    public void Wrong_magic_is_not_a_GGUF_file()
    {
        string path = _temp.File("magic.gguf");
        new RawGguf().Header(0, 0, magic: 0x4C4C4747).Save(path);
        AssertFails(() => GgufFile.Open(path), "not a GGUF file: it starts with 0x4C4C4747");
        Assert.False(GgufFile.HasMagic(path));
    }

    [Theory]
    [InlineData(1u, "GGUF version 1 is not supported (only 2 and 3)")]
    [InlineData(4u, "GGUF version 4 is not supported (only 2 and 3)")]
    [InlineData(0x03000000u, "big-endian GGUF file")]
    public void Versions_other_than_2_and_3_are_refused(uint version, string expected)
    {
        string path = _temp.File("version.gguf");
        new RawGguf().Header(0, 0, version).Save(path);
        AssertFails(() => GgufFile.Open(path), path, expected);
    }

    [Fact]
    public void A_tensor_past_the_end_of_the_file_is_reported()
    {
        string path = _temp.File("past.gguf");
        RawGguf.Minimal(g => g.Tensor("w", [8], RawGguf.F32, 32)).Save(path);
        AssertFails(() => GgufFile.Open(path), "tensor 'w'", "data [32, 32 + 32)", "runs past the end of the file");
    }

    [Fact]
    public void An_unknown_ggml_type_is_reported()
    {
        string path = _temp.File("type.gguf");
        RawGguf.Minimal(g => g.Tensor("w", [8], 99, 0)).Save(path);
        AssertFails(() => GgufFile.Open(path), "tensor 'w'", "ggml type 99 is unknown (known: F32, F16, Q4_0");
    }

    [Fact]
    public void A_misaligned_data_offset_is_reported()
    {
        string path = _temp.File("aligned.gguf");
        RawGguf.Minimal(g => g.Tensor("w", [4], RawGguf.F32, 4)).Save(path);
        AssertFails(() => GgufFile.Open(path), "tensor 'w'", "data offset 4 is not a multiple of the file's alignment 32");
    }

    [Fact]
    public void A_row_that_is_not_whole_blocks_is_reported()
    {
        string path = _temp.File("blocks.gguf");
        RawGguf.Minimal(g => g.Tensor("w", [48, 2], RawGguf.Q8_0, 0), dataBytes: 256).Save(path);
        AssertFails(() => GgufFile.Open(path), "tensor 'w'", "row length 48 is not a multiple of the Q8_0 block size 32");
    }

    [Fact]
    public void An_absurd_tensor_count_is_refused_before_anything_is_allocated()
    {
        string path = _temp.File("count.gguf");
        RawGguf.Minimal(tensors: 1UL << 60).Save(path);
        AssertFails(() => GgufFile.Open(path), path, $"tensor count {1UL << 60} cannot fit in the");
    }

    [Fact]
    public void An_absurd_metadata_count_is_refused()
    {
        string path = _temp.File("kv-count.gguf");
        new RawGguf().Header(0, ulong.MaxValue).Bytes(new byte[64]).Save(path);
        AssertFails(() => GgufFile.Open(path), $"metadata count {ulong.MaxValue} cannot fit in the 64 bytes after the header");
    }

    [Fact]
    public void An_absurd_string_length_is_refused()
    {
        string path = _temp.File("string.gguf");
        new RawGguf().Header(0, 1).String("general.name").UInt32(RawGguf.TypeString).UInt64(1UL << 62).Bytes(new byte[64]).Save(path);
        AssertFails(() => GgufFile.Open(path), "metadata key 'general.name'", $"string length {1UL << 62} runs past the end of the file");
    }

    [Fact]
    public void A_string_over_the_limit_is_refused_even_when_the_file_holds_it()
    {
        string path = _temp.File("long-string.gguf");
        int length = GgufFile.MaxStringBytes + 1;
        new RawGguf().Header(0, 1).String("general.name").UInt32(RawGguf.TypeString).UInt64((ulong)length).Bytes(new byte[length]).Save(path);
        AssertFails(() => GgufFile.Open(path), "metadata key 'general.name'", $"string length {length} exceeds the {GgufFile.MaxStringBytes}-byte limit");
    }

    [Fact]
    public void An_array_longer_than_the_file_is_refused()
    {
        string path = _temp.File("array.gguf");
        new RawGguf().Header(0, 1).String("tokenizer.ggml.scores").UInt32(RawGguf.TypeArray).UInt32(6).UInt64(1000).Bytes(new byte[400]).Save(path);
        AssertFails(() => GgufFile.Open(path), "metadata key 'tokenizer.ggml.scores'", "array of 1000 float32 runs past the end of the file (400 bytes are left)");
    }

    [Fact]
    public void Arrays_nested_too_deep_are_refused()
    {
        string path = _temp.File("nested.gguf");
        var gguf = new RawGguf().Header(0, 1).String("deep").UInt32(RawGguf.TypeArray);
        for (int level = 0; level < 20; level++)
            gguf.UInt32(RawGguf.TypeArray).UInt64(1);
        gguf.Bytes(new byte[64]).Save(path);
        AssertFails(() => GgufFile.Open(path), "metadata key 'deep'", $"arrays nest deeper than {GgufFile.MaxArrayNesting} levels");
    }

    [Fact]
    public void A_duplicate_tensor_name_is_reported()
    {
        string path = _temp.File("duplicate.gguf");
        RawGguf.Minimal(g => g.Tensor("w", [4], RawGguf.F32, 0).Tensor("w", [4], RawGguf.F32, 0), tensors: 2).Save(path);
        AssertFails(() => GgufFile.Open(path), "tensor 'w'", "tensor name appears twice");
    }

    [Fact]
    public void A_duplicate_metadata_key_is_reported()
    {
        string path = _temp.File("duplicate-key.gguf");
        new RawGguf().Header(0, 2).KeyUInt32("llama.block_count", 2).KeyUInt32("llama.block_count", 3).Save(path);
        AssertFails(() => GgufFile.Open(path), "metadata key 'llama.block_count': appears twice");
    }

    [Theory]
    [InlineData(0u, "0")]
    [InlineData(48u, "48")]
    public void An_alignment_that_is_not_a_power_of_two_is_refused(uint alignment, string shown)
    {
        string path = _temp.File("alignment.gguf");
        new RawGguf().Header(0, 1).KeyUInt32(GgufFile.AlignmentKey, alignment).Save(path);
        AssertFails(() => GgufFile.Open(path), $"metadata key 'general.alignment' is {shown} (uint32), not a power of two");
    }

    [Fact]
    public void Typed_metadata_readers_name_a_missing_or_mistyped_key()
    {
        string path = _temp.File("typed.gguf");
        RawGguf.Minimal().Save(path);
        using var file = GgufFile.Open(path);

        AssertFails(() => file.Metadata.RequiredInteger("llama.block_count"), path, "missing required metadata key 'llama.block_count'");
        AssertFails(() => file.Metadata.Integer("general.architecture"), "metadata key 'general.architecture' is string, expected an integer");
        Assert.Null(file.Metadata.String("general.name"));
    }
}
