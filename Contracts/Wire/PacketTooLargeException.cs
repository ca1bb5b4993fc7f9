namespace FtpCluster.Grains.Wire;

/// <summary>
/// An activation packet would exceed the message limit. Raised before anything is sent: Orleans answers an
/// oversized message by closing the whole connection, failing every call in flight on it.
/// </summary>
public sealed class PacketTooLargeException : Exception
{
    public PacketTooLargeException(long encodedBytes, int maxMessageBytes, int rowCount, int hiddenSize,
        WireEncoding encoding, int rowsThatFit)
        : base(Describe(encodedBytes, maxMessageBytes, rowCount, hiddenSize, encoding, rowsThatFit))
    {
        EncodedBytes = encodedBytes;
        MaxMessageBytes = maxMessageBytes;
        RowCount = rowCount;
        HiddenSize = hiddenSize;
        Encoding = encoding;
        RowsThatFit = rowsThatFit;
    }

    public PacketTooLargeException() : base("activation packet exceeds the message limit") { }

    public PacketTooLargeException(string message) : base(message) { }

    public PacketTooLargeException(string message, Exception innerException) : base(message, innerException) { }

    public long EncodedBytes { get; }

    public int MaxMessageBytes { get; }

    public int RowCount { get; }

    public int HiddenSize { get; }

    public WireEncoding Encoding { get; }

    /// <summary>The most rows of this hidden size that fit one packet under the limit in this encoding.</summary>
    public int RowsThatFit { get; }

    private static string Describe(long encodedBytes, int maxMessageBytes, int rowCount, int hiddenSize,
        WireEncoding encoding, int rowsThatFit)
    {
        string size = $"an activation packet of {rowCount} rows × {hiddenSize} in {encoding.CliWord()} would be " +
            $"{encodedBytes} bytes, over the message limit of {maxMessageBytes} bytes";
        if (rowsThatFit == 0)
            return $"{size}; not even one row fits: raise the message limit";
        string smaller = encoding is WireEncoding.F32 or WireEncoding.F16 or WireEncoding.BF16
            ? " or a smaller encoding (f16/bf16 halve f32, int8 about quarters it)"
            : "";
        return $"{size}; use a smaller microbatch (at most {rowsThatFit} rows fit){smaller}";
    }
}
