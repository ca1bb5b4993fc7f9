using System.Buffers;
using FtpCluster.Grains.Wire;
using MessagePack;

namespace FtpCluster.Grains.Tests.Wire;

public sealed class MalformedPacketTests
{
    /// <summary>A packet written field by field, so each test can break exactly one thing.</summary>
    private static byte[] Craft(int version = ActivationCodec.FormatVersion, int fields = ActivationCodec.FieldCount, int rows = 2, int hidden = 4, byte encoding = 0,
        int? rowBytes = null, int? hiddenBytes = null, float scale = 1f, bool trailingNil = false, int planLayers = 0, int? planBytes = null)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        writer.WriteArrayHeader(fields);
        writer.WriteInt32(version);
        if (fields > 1)
        {
            writer.Write("dep");
            writer.WriteInt64(5);
            writer.WriteInt32(0);
            writer.WriteInt32(1);
            writer.WriteInt32(rows);
            writer.WriteInt32(hidden);
            writer.WriteUInt8(encoding);
            writer.WriteInt32(planLayers);
            writer.Write(new byte[rowBytes ?? rows * ActivationCodec.RowMetadataBytes]);
            writer.Write(new byte[planBytes ?? (planLayers > 0 ? rows * RowBlockPlan.BytesPerRowOf(planLayers) : 0)]);
            var payload = new byte[hiddenBytes ?? rows * hidden * 4];
            BitConverter.TryWriteBytes(payload, scale); // the first int8 scale, when the encoding has scales
            writer.Write(payload);
        }
        if (trailingNil)
            writer.WriteNil();
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static string Refusal(byte[] bytes) => Assert.Throws<InvalidDataException>(() => ActivationCodec.Decode(bytes)).Message;

    [Fact]
    public void The_crafted_baseline_decodes()
    {
        Assert.Equal(2, ActivationCodec.Decode(Craft()).RowCount);
        Assert.Equal(2, ActivationCodec.Decode(Craft(encoding: 3, hiddenBytes: 2 * (4 + 4))).RowCount);
    }

    [Fact]
    public void Truncation_anywhere_is_reported_as_truncation()
    {
        var whole = ActivationCodec.Encode(WirePackets.Uniform(3, 64), WireEncoding.BF16, int.MaxValue);
        foreach (int length in new[] { 0, 1, 10, 30, whole.Length / 2, whole.Length - 1 })
        {
            string message = Refusal(whole[..length]);
            Assert.Contains("truncated", message);
            Assert.Contains($"its {length} bytes end before its last field", message);
        }
    }

    [Fact]
    public void Another_format_version_is_refused_by_number()
    {
        // A version-3 packet as that format wrote it, with 21-byte rows: refused by its version, not by its sizes.
        Assert.Contains("format version 3 is not supported: this build reads version 4", Refusal(Craft(version: 3, rowBytes: 2 * 21)));
        var header = Assert.Throws<InvalidDataException>(() => ActivationCodec.ReadHeader(Craft(version: 0)));
        Assert.Contains("format version 0 is not supported", header.Message);
    }

    [Fact]
    public void A_wrong_field_count_is_refused() =>
        Assert.Contains("must have 12 fields, found 13", Refusal(Craft(fields: 13)));

    [Fact]
    public void Something_other_than_an_array_is_not_a_packet() =>
        Assert.Contains("not an activation packet: expected a MessagePack array, found Map", Refusal([0x80]));

    [Fact]
    public void A_row_count_that_does_not_match_the_row_metadata_is_refused() =>
        Assert.Contains("declares 3 rows, which need 51 bytes of row metadata, but carries 32",
            Refusal(Craft(rows: 3, rowBytes: 32, hiddenBytes: 48)));

    [Fact]
    public void A_plan_that_does_not_match_its_rows_and_layers_is_refused()
    {
        Assert.Contains("declares a plan of 2 rows × 9 layers, which needs 4 bytes, but carries 3",
            Refusal(Craft(planLayers: 9, planBytes: 3)));
        Assert.Contains("declares a plan of -1 layers", Refusal(Craft(planLayers: -1, planBytes: 0)));
    }

    [Fact]
    public void A_row_with_unknown_flags_is_refused()
    {
        var bytes = Craft(rows: 1, hidden: 4, hiddenBytes: 16);
        // The row blob is the first bin of 17 bytes (0xc4 0x11); its last byte is the row's flags.
        int at = bytes.AsSpan().IndexOf(new byte[] { 0xc4, ActivationCodec.RowMetadataBytes }) + 2 + 16;
        bytes[at] = 0x02;
        Assert.Contains("row 0 has unknown flags 0x02", Refusal(bytes));
    }

    [Fact]
    public void A_row_count_that_does_not_match_the_hidden_payload_is_refused() =>
        Assert.Contains("declares 2 rows × 4 in f32, which need 32 bytes of hidden payload, but carries 28",
            Refusal(Craft(hiddenBytes: 28)));

    [Fact]
    public void An_unknown_encoding_is_refused_by_code() =>
        Assert.Contains("unknown hidden encoding 9", Refusal(Craft(encoding: 9)));

    [Theory]
    [InlineData(-1, 4, "negative row count, -1")]
    [InlineData(2, 0, "hidden size 0; it must be positive")]
    public void Impossible_shapes_are_refused(int rows, int hidden, string expected) =>
        Assert.Contains(expected, Refusal(Craft(rows: rows, hidden: hidden, rowBytes: 0, hiddenBytes: 0)));

    [Fact]
    public void Bytes_after_the_last_field_are_refused() =>
        Assert.Contains("has 1 bytes after its last field", Refusal(Craft(trailingNil: true)));

    [Fact]
    public void A_field_of_the_wrong_type_is_reported_as_malformed()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        writer.WriteArrayHeader(ActivationCodec.FieldCount);
        writer.WriteInt32(ActivationCodec.FormatVersion);
        writer.Write(3.5); // a float where the deployment id belongs
        writer.Flush();

        Assert.Contains("activation packet is malformed", Refusal(buffer.WrittenSpan.ToArray()));
    }

    [Fact]
    public void An_encoding_code_out_of_byte_range_is_refused()
    {
        var bytes = Craft();
        // The encoding field is 0xcc 0x00; make it the uint16 0xcd 0x01 0x00 (256) without changing later offsets' meaning.
        int at = Array.IndexOf(bytes, (byte)0xcc);
        var patched = bytes[..at].Concat(new byte[] { 0xcd, 0x01, 0x00 }).Concat(bytes[(at + 2)..]).ToArray();

        Assert.Contains("header field out of range", Refusal(patched));
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(-1f)]
    [InlineData(float.PositiveInfinity)]
    public void An_int8_scale_that_is_not_finite_and_non_negative_is_refused(float scale) =>
        Assert.Contains($"int8 scale {scale} at index 0", Refusal(Craft(encoding: 4, hiddenBytes: 2 * (4 + 4), scale: scale)));
}
