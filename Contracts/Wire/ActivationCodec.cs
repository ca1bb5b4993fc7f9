using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using MessagePack;

namespace FtpCluster.Grains.Wire;

/// <summary>
/// Encodes <see cref="ActivationPacket"/>s to the bytes stages pass through Orleans, and back.
/// </summary>
/// <remarks>
/// A packet is one MessagePack array of <see cref="FieldCount"/> fields:
/// <code>
/// [0] format version   int32  (0xd2 + 4 bytes)
/// [1] deployment id    str    (UTF-8)
/// [2] microbatch id    int64  (0xd3 + 8 bytes)
/// [3] source stage     int32
/// [4] target stage     int32
/// [5] row count        int32
/// [6] hidden size      int32
/// [7] encoding         uint8  (0xcc + 1 byte, a <see cref="WireEncoding"/> code)
/// [8] plan layers      int32  layers the plan covers; 0: no plan, every block computes every row
/// [9] rows             bin    row count × 17 bytes: sequence id int64, position int32, row index int32,
///                             flags uint8 (bit 0: needs logits)
/// [10] plan            bin    row count × ceil(plan layers / 8) bytes, see <see cref="RowBlockPlan"/>
/// [11] hidden          bin    see <see cref="HiddenPayload"/>
/// </code>
/// Integers are written in their fixed-width MessagePack forms and the bulk data in two little-endian
/// <c>bin</c> blobs, so a packet's size follows from its shape alone (<see cref="EncodedPacketBytes(int, int, WireEncoding, string)"/>)
/// and encoding or decoding the rows is a copy or a conversion, not one MessagePack item per number.
/// </remarks>
public static class ActivationCodec
{
    /// <summary>
    /// The layout this build writes and the only one it reads. Version 4 dropped the rows' attention score
    /// (version 3's rows were 21 bytes): a stage never read it.
    /// </summary>
    public const int FormatVersion = 4;
    public const int FieldCount = 12;
    public const int RowMetadataBytes = sizeof(long) + sizeof(int) + sizeof(int) + sizeof(byte);

    // fixarray + version + microbatch + four int32 fields + encoding + plan layers, each with its one-byte MessagePack code.
    private const int FixedHeaderBytes = 1 + 5 + 9 + 4 * 5 + 2 + 5;

    /// <summary>Bytes of the hidden payload alone (the second <c>bin</c> blob's contents).</summary>
    public static long EncodedHiddenBytes(int rows, int hidden, WireEncoding encoding)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hidden);
        return HiddenPayload.Bytes(rows, hidden, encoding);
    }

    /// <summary>Exact bytes of a whole encoded packet: header, row metadata, plan and hidden payload.</summary>
    /// <param name="planLayers">The layers the rows' plan covers; 0 for a packet without a plan.</param>
    public static long EncodedPacketBytes(int rows, int hidden, WireEncoding encoding, string deploymentId, int planLayers = 0)
    {
        long hiddenBytes = EncodedHiddenBytes(rows, hidden, encoding);
        return FixedHeaderBytes
            + StrBytes(Encoding.UTF8.GetByteCount(deploymentId))
            + BinBytes((long)rows * RowMetadataBytes)
            + BinBytes(PlanBytes(rows, planLayers))
            + BinBytes(hiddenBytes);
    }

    public static long EncodedPacketBytes(ActivationPacket packet, WireEncoding encoding) =>
        EncodedPacketBytes(packet.RowCount, packet.HiddenSize, encoding, packet.DeploymentId, packet.Plan?.Layers ?? 0);

    private static long PlanBytes(int rows, int planLayers) => planLayers == 0 ? 0 : (long)rows * RowBlockPlan.BytesPerRowOf(planLayers);

    /// <summary>The most rows one packet can hold under <paramref name="maxMessageBytes"/>; 0 when not even one fits.</summary>
    public static int MaxRowsPerPacket(int hidden, WireEncoding encoding, string deploymentId, int maxMessageBytes, int planLayers = 0)
    {
        // Size grows with rows but not linearly (blob headers widen at 256 and 65536 bytes): search for the boundary.
        int fits = 0, tooMany = maxMessageBytes / RowMetadataBytes + 1;
        while (tooMany - fits > 1)
        {
            int rows = fits + (tooMany - fits) / 2;
            if (EncodedPacketBytes(rows, hidden, encoding, deploymentId, planLayers) <= maxMessageBytes)
                fits = rows;
            else
                tooMany = rows;
        }
        return fits;
    }

    /// <summary>
    /// Encodes <paramref name="packet"/>, refusing with <see cref="PacketTooLargeException"/> when it would
    /// exceed <paramref name="maxMessageBytes"/>. int8 encodings refuse rows holding NaN or infinity.
    /// </summary>
    public static byte[] Encode(ActivationPacket packet, WireEncoding encoding, int maxMessageBytes)
    {
        ArgumentNullException.ThrowIfNull(packet);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessageBytes);
        RequireLittleEndian();
        long size = EncodedPacketBytes(packet, encoding);
        if (size > Math.Min(maxMessageBytes, Array.MaxLength))
            throw new PacketTooLargeException(size, maxMessageBytes, packet.RowCount, packet.HiddenSize, encoding,
                MaxRowsPerPacket(packet.HiddenSize, encoding, packet.DeploymentId, maxMessageBytes, packet.Plan?.Layers ?? 0));

        // Every byte is written below, so skip zeroing: at 1–8 MB that is a pass over memory as long as the copy itself.
        var bytes = GC.AllocateUninitializedArray<byte>((int)size);
        var output = new ExactBufferWriter(bytes);
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(FieldCount);
        writer.WriteInt32(FormatVersion);
        // As UTF-8 up front: writing a .NET string asks the buffer for its worst-case size, which an exact buffer may lack.
        writer.WriteString(Encoding.UTF8.GetBytes(packet.DeploymentId));
        writer.WriteInt64(packet.MicrobatchId);
        writer.WriteInt32(packet.SourceStage);
        writer.WriteInt32(packet.TargetStage);
        writer.WriteInt32(packet.RowCount);
        writer.WriteInt32(packet.HiddenSize);
        writer.WriteUInt8((byte)encoding);
        writer.WriteInt32(packet.Plan?.Layers ?? 0);

        int rowBytes = packet.RowCount * RowMetadataBytes;
        writer.WriteBinHeader(rowBytes);
        WriteRows(packet.Rows, writer.GetSpan(rowBytes));
        writer.Advance(rowBytes);

        var plan = packet.Plan is null ? ReadOnlySpan<byte>.Empty : packet.Plan.Bits;
        writer.WriteBinHeader(plan.Length);
        plan.CopyTo(writer.GetSpan(plan.Length));
        writer.Advance(plan.Length);

        int hiddenBytes = (int)EncodedHiddenBytes(packet.RowCount, packet.HiddenSize, encoding);
        writer.WriteBinHeader(hiddenBytes);
        HiddenPayload.Encode(packet.HiddenStates, packet.HiddenSize, encoding, writer.GetSpan(hiddenBytes)[..hiddenBytes]);
        writer.Advance(hiddenBytes);
        writer.Flush();
        // The buffer was not zeroed: a short write would send stale memory.
        if (output.Written != bytes.Length)
            throw new InvalidOperationException(
                $"activation packet filled {output.Written} of its computed {bytes.Length} bytes: the size formula and the writer disagree");
        return bytes;
    }

    /// <summary>Decodes a packet; hidden rows come back as float32 whatever the encoding.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed packet of this format version.</exception>
    public static ActivationPacket Decode(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Decode(bytes.AsMemory());
    }

    /// <inheritdoc cref="Decode(byte[])"/>
    public static ActivationPacket Decode(ReadOnlyMemory<byte> bytes)
    {
        RequireLittleEndian();
        try
        {
            var reader = new MessagePackReader(bytes);
            var header = ReadHeader(ref reader);
            var rowBlob = ReadBlob(ref reader, "row metadata");
            var planBlob = ReadBlob(ref reader, "plan");
            var hiddenBlob = ReadBlob(ref reader, "hidden payload");
            if (!reader.End)
                throw new InvalidDataException(
                    $"activation packet has {bytes.Length - reader.Consumed} bytes after its last field");

            long expectedRowBytes = (long)header.RowCount * RowMetadataBytes;
            if (rowBlob.Length != expectedRowBytes)
                throw new InvalidDataException(
                    $"activation packet declares {header.RowCount} rows, which need {expectedRowBytes} bytes of row metadata, but carries {rowBlob.Length}");
            long expectedPlanBytes = PlanBytes(header.RowCount, header.PlanLayers);
            if (planBlob.Length != expectedPlanBytes)
                throw new InvalidDataException(
                    $"activation packet declares a plan of {header.RowCount} rows × {header.PlanLayers} layers, which needs {expectedPlanBytes} bytes, but carries {planBlob.Length}");
            long expectedHiddenBytes = EncodedHiddenBytes(header.RowCount, header.HiddenSize, header.Encoding);
            if (hiddenBlob.Length != expectedHiddenBytes)
                throw new InvalidDataException(
                    $"activation packet declares {header.RowCount} rows × {header.HiddenSize} in {header.Encoding.CliWord()}, " +
                    $"which need {expectedHiddenBytes} bytes of hidden payload, but carries {hiddenBlob.Length}");
            if (header.Encoding is WireEncoding.Int8PerRow or WireEncoding.Int8PerBlock32)
                CheckScales(HiddenPayload.Scales(hiddenBlob, header.RowCount, header.HiddenSize, header.Encoding));

            var rows = ReadRows(rowBlob, header.RowCount);
            var hidden = GC.AllocateUninitializedArray<float>(header.RowCount * header.HiddenSize);
            HiddenPayload.Decode(hiddenBlob, header.HiddenSize, header.Encoding, hidden);
            var plan = header.PlanLayers == 0 ? null : new RowBlockPlan(header.RowCount, header.PlanLayers, planBlob.ToArray());
            return new ActivationPacket(header.DeploymentId, header.MicrobatchId, header.SourceStage,
                header.TargetStage, header.HiddenSize, rows, hidden, plan);
        }
        catch (Exception e) when (IsReaderFailure(e))
        {
            throw Malformed(e, bytes.Length);
        }
    }

    /// <summary>Reads only the header, e.g. to route or count a packet without decoding its rows.</summary>
    /// <exception cref="InvalidDataException">The header is malformed or of another format version.</exception>
    public static PacketHeader ReadHeader(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            var reader = new MessagePackReader(bytes);
            return ReadHeader(ref reader);
        }
        catch (Exception e) when (IsReaderFailure(e))
        {
            throw Malformed(e, bytes.Length);
        }
    }

    private static PacketHeader ReadHeader(ref MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePackType.Array)
            throw new InvalidDataException(
                $"not an activation packet: expected a MessagePack array, found {reader.NextMessagePackType}");
        int fields = reader.ReadArrayHeader();
        if (fields == 0)
            throw new InvalidDataException("not an activation packet: the array is empty");
        int version = reader.ReadInt32();
        if (version != FormatVersion)
            throw new InvalidDataException(
                $"activation packet format version {version} is not supported: this build reads version {FormatVersion}");
        if (fields != FieldCount)
            throw new InvalidDataException(
                $"activation packet of format version {FormatVersion} must have {FieldCount} fields, found {fields}");

        string deploymentId = reader.ReadString()
            ?? throw new InvalidDataException("activation packet has a nil deployment id");
        long microbatchId = reader.ReadInt64();
        int source = reader.ReadInt32();
        int target = reader.ReadInt32();
        int rows = reader.ReadInt32();
        int hidden = reader.ReadInt32();
        byte encoding = reader.ReadByte();
        int planLayers = reader.ReadInt32();

        if (source < 0 || target < 0)
            throw new InvalidDataException($"activation packet has a negative stage ({source} → {target})");
        if (rows < 0)
            throw new InvalidDataException($"activation packet declares a negative row count, {rows}");
        if (hidden <= 0)
            throw new InvalidDataException($"activation packet declares hidden size {hidden}; it must be positive");
        if (planLayers < 0)
            throw new InvalidDataException($"activation packet declares a plan of {planLayers} layers; it must be 0 (no plan) or positive");
        if (!Enum.IsDefined((WireEncoding)encoding))
            throw new InvalidDataException(
                $"activation packet uses unknown hidden encoding {encoding}; this build knows " +
                string.Join(", ", WireEncodings.All.Select(e => $"{(byte)e} ({e.CliWord()})")));
        return new PacketHeader(version, deploymentId, microbatchId, source, target, rows, hidden,
            (WireEncoding)encoding, planLayers);
    }

    private static ReadOnlySpan<byte> ReadBlob(ref MessagePackReader reader, string what)
    {
        var blob = reader.ReadBytes() ?? throw new InvalidDataException($"activation packet has nil {what}");
        // A reader over one block of memory yields single-segment sequences: the blob is a view, not a copy.
        return blob.IsSingleSegment ? blob.FirstSpan : blob.ToArray();
    }

    private static void WriteRows(PacketRow[] rows, Span<byte> destination)
    {
        for (int r = 0; r < rows.Length; r++)
        {
            var slot = destination.Slice(r * RowMetadataBytes, RowMetadataBytes);
            BinaryPrimitives.WriteInt64LittleEndian(slot, rows[r].SequenceId);
            BinaryPrimitives.WriteInt32LittleEndian(slot[8..], rows[r].Position);
            BinaryPrimitives.WriteInt32LittleEndian(slot[12..], rows[r].RowIndex);
            slot[16] = rows[r].NeedsLogits ? (byte)1 : (byte)0;
        }
    }

    private static PacketRow[] ReadRows(ReadOnlySpan<byte> source, int count)
    {
        var rows = new PacketRow[count];
        for (int r = 0; r < count; r++)
        {
            var slot = source.Slice(r * RowMetadataBytes, RowMetadataBytes);
            if ((slot[16] & ~1) != 0)
                throw new InvalidDataException($"activation packet row {r} has unknown flags 0x{slot[16]:x2}");
            rows[r] = new PacketRow(BinaryPrimitives.ReadInt64LittleEndian(slot),
                BinaryPrimitives.ReadInt32LittleEndian(slot[8..]),
                BinaryPrimitives.ReadInt32LittleEndian(slot[12..]),
                (slot[16] & 1) != 0);
        }
        return rows;
    }

    private static void CheckScales(ReadOnlySpan<float> scales)
    {
        for (int i = 0; i < scales.Length; i++)
            if (!(scales[i] >= 0) || float.IsInfinity(scales[i]))
                throw new InvalidDataException(
                    $"activation packet has int8 scale {scales[i]} at index {i}; scales are finite and non-negative");
    }

    private static int StrBytes(int utf8Bytes) => utf8Bytes switch
    {
        <= 31 => 1 + utf8Bytes,
        <= byte.MaxValue => 2 + utf8Bytes,
        <= ushort.MaxValue => 3 + utf8Bytes,
        _ => 5 + utf8Bytes,
    };

    private static long BinBytes(long bytes) => bytes switch
    {
        <= byte.MaxValue => 2 + bytes,
        <= ushort.MaxValue => 3 + bytes,
        _ => 5 + bytes,
    };

    private static bool IsReaderFailure(Exception e) =>
        // ArgumentOutOfRangeException: a bin header whose length runs past the buffer, as the reader slices it.
        e is EndOfStreamException or MessagePackSerializationException or OverflowException or ArgumentOutOfRangeException;

    private static InvalidDataException Malformed(Exception e, int length) => e switch
    {
        EndOfStreamException => new InvalidDataException(
            $"activation packet is truncated: its {length} bytes end before its last field", e),
        OverflowException => new InvalidDataException(
            $"activation packet has a header field out of range: {e.Message}", e),
        _ => new InvalidDataException($"activation packet is malformed: {e.Message}", e),
    };

    private static void RequireLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("activation packets hold little-endian blobs; this machine is big-endian");
    }

    /// <summary>Lets MessagePackWriter fill a byte[] sized exactly in advance, so the packet is never copied.</summary>
    private sealed class ExactBufferWriter(byte[] buffer) : IBufferWriter<byte>
    {
        public int Written { get; private set; }

        public void Advance(int count) => Written += count;

        public Memory<byte> GetMemory(int sizeHint = 0) => Remaining(sizeHint);

        public Span<byte> GetSpan(int sizeHint = 0) => Remaining(sizeHint).Span;

        private Memory<byte> Remaining(int sizeHint)
        {
            if (buffer.Length - Written < sizeHint)
                throw new InvalidOperationException(
                    $"activation packet outgrew its computed size of {buffer.Length} bytes: the size formula and the writer disagree");
            return buffer.AsMemory(Written);
        }
    }
}
