using System.Text;
using FtpCluster.Grains.Wire;

namespace FtpCluster.Grains.Tests.Wire;

public sealed class ActivationCodecTests
{
    [Theory]
    [InlineData(WireEncoding.F32)]
    [InlineData(WireEncoding.F16)]
    [InlineData(WireEncoding.BF16)]
    [InlineData(WireEncoding.Int8PerRow)]
    [InlineData(WireEncoding.Int8PerBlock32)]
    public void Header_and_row_metadata_round_trip_exactly(WireEncoding encoding)
    {
        PacketRow[] rows =
        [
            new(long.MinValue, 0, 0, false),
            new(long.MaxValue, int.MaxValue, int.MaxValue, true),
            new(-7, 123_456, 5, false),
            new(0, 1, 2, true),
        ];
        // 11 layers: a plan row spans two bytes, the second partly used.
        var plan = new RowBlockPlan(4, 11);
        foreach (var (row, block) in new[] { (0, 0), (0, 10), (1, 3), (3, 7), (3, 8) }) plan.Set(row, block);
        var packet = new ActivationPacket("déploiement-α/7", long.MaxValue - 3, 6, 7, 3, rows,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], plan);

        var bytes = ActivationCodec.Encode(packet, encoding, int.MaxValue);
        var decoded = ActivationCodec.Decode(bytes);
        var header = ActivationCodec.ReadHeader(bytes);

        Assert.Equal(new PacketHeader(ActivationCodec.FormatVersion, "déploiement-α/7", long.MaxValue - 3, 6, 7, 4, 3, encoding, 11), header);
        Assert.Equal((packet.DeploymentId, packet.MicrobatchId, packet.SourceStage, packet.TargetStage, packet.HiddenSize),
            (decoded.DeploymentId, decoded.MicrobatchId, decoded.SourceStage, decoded.TargetStage, decoded.HiddenSize));
        Assert.Equal(rows, decoded.Rows);
        Assert.Equal(plan.Bits.ToArray(), decoded.Plan!.Bits.ToArray());
        Assert.Equal(EncodedBlocks(plan), EncodedBlocks(decoded.Plan));
        Assert.Equal(bytes.Length, ActivationCodec.EncodedPacketBytes(packet, encoding));
    }

    private static (int, int)[] EncodedBlocks(RowBlockPlan plan) =>
        [.. from r in Enumerable.Range(0, plan.Rows) from b in Enumerable.Range(0, plan.Layers) where plan.Computes(r, b) select (r, b)];

    [Fact]
    public void A_packet_without_a_plan_decodes_without_one()
    {
        var packet = WirePackets.Uniform(3, 8);
        Assert.Null(ActivationCodec.Decode(ActivationCodec.Encode(packet, WireEncoding.F32, int.MaxValue)).Plan);
    }

    // The layout documented on ActivationCodec, restated independently: fixarray, int32 version, str id, int64
    // microbatch, four int32 fields, uint8 encoding, int32 plan layers, then three bin blobs (rows, an empty
    // plan, hidden), each item behind its MessagePack code.
    private static long DocumentedPacketBytes(int rows, int hidden, WireEncoding encoding, string deploymentId)
    {
        long hiddenBytes = encoding switch
        {
            WireEncoding.F32 => 4L * rows * hidden,
            WireEncoding.F16 or WireEncoding.BF16 => 2L * rows * hidden,
            WireEncoding.Int8PerRow => rows * (hidden + 4L),
            _ => rows * (hidden + 4L * ((hidden + 31) / 32)),
        };
        int id = Encoding.UTF8.GetByteCount(deploymentId);
        long str = id <= 31 ? 1 + id : 2 + id;
        static long Bin(long n) => (n < 256 ? 2 : n < 65536 ? 3 : 5) + n;
        return 1 + 5 + str + 9 + 4 * 5 + 2 + 5 + Bin(17L * rows) + Bin(0) + Bin(hiddenBytes);
    }

    public static TheoryData<WireEncoding, int, int> Shapes()
    {
        var data = new TheoryData<WireEncoding, int, int>();
        foreach (var encoding in WireEncodings.All)
            foreach (int rows in new[] { 0, 1, 7, 128 })
                foreach (int hidden in new[] { 64, 576, 2048 })
                    data.Add(encoding, rows, hidden);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Measured_size_is_the_hidden_payload_plus_the_documented_metadata(WireEncoding encoding, int rows, int hidden)
    {
        var packet = WirePackets.Uniform(rows, hidden);
        long expectedHidden = encoding switch
        {
            WireEncoding.F32 => 4L * rows * hidden,
            WireEncoding.F16 or WireEncoding.BF16 => 2L * rows * hidden,
            WireEncoding.Int8PerRow => rows * (hidden + 4L),
            _ => rows * (hidden + 4L * (hidden / 32)),
        };

        var bytes = ActivationCodec.Encode(packet, encoding, int.MaxValue);

        Assert.Equal(expectedHidden, ActivationCodec.EncodedHiddenBytes(rows, hidden, encoding));
        Assert.Equal(DocumentedPacketBytes(rows, hidden, encoding, packet.DeploymentId), bytes.Length);
        Assert.Equal(bytes.Length, ActivationCodec.EncodedPacketBytes(packet, encoding));
    }

    [Theory]
    [InlineData("", 0, 70)]
    [InlineData("a-deployment-id-of-exactly-32-by", 3, 70)]
    [InlineData("δ-deployment-whose-id-is-longer-than-thirty-one-bytes", 300, 33)]
    public void Measured_size_follows_the_id_length_and_odd_hidden_sizes(string deploymentId, int rows, int hidden)
    {
        var packet = WirePackets.Uniform(rows, hidden, deploymentId: deploymentId);
        foreach (var encoding in WireEncodings.All)
        {
            var bytes = ActivationCodec.Encode(packet, encoding, int.MaxValue);
            Assert.Equal(DocumentedPacketBytes(rows, hidden, encoding, deploymentId), bytes.Length);
            Assert.Equal(bytes.Length, ActivationCodec.EncodedPacketBytes(packet, encoding));
        }
    }

    [Fact]
    public void A_packet_over_the_limit_is_refused_before_encoding_with_both_sizes_and_a_remedy()
    {
        var packet = WirePackets.Uniform(128, 576);
        int size = (int)ActivationCodec.EncodedPacketBytes(packet, WireEncoding.F32);

        Assert.Equal(size, ActivationCodec.Encode(packet, WireEncoding.F32, size).Length);
        var error = Assert.Throws<PacketTooLargeException>(() => ActivationCodec.Encode(packet, WireEncoding.F32, size - 1));

        Assert.Equal((size, size - 1, 127), (error.EncodedBytes, error.MaxMessageBytes, error.RowsThatFit));
        Assert.Contains($"{size} bytes, over the message limit of {size - 1} bytes", error.Message);
        Assert.Contains("smaller microbatch (at most 127 rows fit)", error.Message);
        Assert.Contains("smaller encoding", error.Message);
    }

    [Fact]
    public void The_refusal_says_when_not_even_one_row_fits_and_offers_no_smaller_encoding_past_int8()
    {
        var packet = WirePackets.Uniform(2, 2048);

        var error = Assert.Throws<PacketTooLargeException>(() => ActivationCodec.Encode(packet, WireEncoding.Int8PerBlock32, 1000));

        Assert.Equal(0, error.RowsThatFit);
        Assert.Contains("not even one row fits", error.Message);
        Assert.DoesNotContain("smaller encoding", error.Message);
    }

    [Theory]
    [InlineData(WireEncoding.F32, 64)]
    [InlineData(WireEncoding.BF16, 576)]
    [InlineData(WireEncoding.Int8PerBlock32, 70)]
    public void Max_rows_per_packet_is_the_exact_boundary(WireEncoding encoding, int hidden)
    {
        // Limits around the points where a blob header widens from 2 to 3 to 5 bytes.
        foreach (int limit in new[] { 200, 300, 1000, 65_000, 65_600, 70_000, 1 << 20 })
        {
            int rows = ActivationCodec.MaxRowsPerPacket(hidden, encoding, "dep", limit);
            if (rows > 0)
                Assert.True(ActivationCodec.EncodedPacketBytes(rows, hidden, encoding, "dep") <= limit);
            Assert.True(ActivationCodec.EncodedPacketBytes(rows + 1, hidden, encoding, "dep") > limit);
        }
    }

    [Fact]
    public void A_packet_whose_values_do_not_match_its_rows_cannot_be_built()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            new ActivationPacket("dep", 0, 0, 1, 4, [new PacketRow(1, 0)], new float[5]));
        Assert.Contains("1 rows of hidden size 4 need 4 values, got 5", error.Message);
    }
}
