using System.Diagnostics;

namespace FtpCluster.Grains.Wire;

/// <summary>
/// Encode and decode speed of one packet shape in one encoding. Rates are float32 activation bytes per
/// second (rows × hidden × 4), the same work measure for every encoding; <see cref="EncodedBytes"/> gives
/// what went on the wire.
/// </summary>
public sealed record WireBenchmarkResult(WireEncoding Encoding, int Rows, int HiddenSize, long ActivationBytes,
    long EncodedBytes, int Iterations, double EncodeGBps, double DecodeGBps, double RoundTripGBps);

/// <summary>Measures <see cref="ActivationCodec"/> on 1 MiB and 8 MiB packets (of float32 activations) in every encoding.</summary>
public static class WireBenchmark
{
    public static IReadOnlyList<long> PacketSizes { get; } = [1L << 20, 8L << 20];

    /// <param name="hiddenSize">Row width; rows per packet follow from the packet size.</param>
    /// <param name="secondsPerCase">How long to repeat each (size, encoding) case; at least three round trips run.</param>
    public static IReadOnlyList<WireBenchmarkResult> Run(int hiddenSize = 2048, double secondsPerCase = 0.5)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(hiddenSize);
        var results = new List<WireBenchmarkResult>();
        foreach (long packetBytes in PacketSizes)
        {
            var packet = SamplePacket((int)Math.Max(1, packetBytes / (sizeof(float) * (long)hiddenSize)), hiddenSize);
            foreach (var encoding in WireEncodings.All)
                results.Add(Measure(packet, encoding, secondsPerCase));
        }
        return results;
    }

    private static WireBenchmarkResult Measure(ActivationPacket packet, WireEncoding encoding, double secondsPerCase)
    {
        // One untimed round trip so JIT tiering and first-touch page faults stay out of the figures.
        var encoded = ActivationCodec.Encode(packet, encoding, int.MaxValue);
        ActivationCodec.Decode(encoded);

        long encodeTicks = 0, decodeTicks = 0;
        int iterations = 0;
        long budget = (long)(secondsPerCase * Stopwatch.Frequency);
        while (iterations < 3 || encodeTicks + decodeTicks < budget)
        {
            long start = Stopwatch.GetTimestamp();
            encoded = ActivationCodec.Encode(packet, encoding, int.MaxValue);
            long encodedAt = Stopwatch.GetTimestamp();
            ActivationCodec.Decode(encoded);
            long decodedAt = Stopwatch.GetTimestamp();
            encodeTicks += encodedAt - start;
            decodeTicks += decodedAt - encodedAt;
            iterations++;
        }

        long activationBytes = (long)packet.HiddenStates.Length * sizeof(float);
        double GBps(long ticks) => activationBytes * (double)iterations / ((double)ticks / Stopwatch.Frequency) / 1e9;
        return new WireBenchmarkResult(encoding, packet.RowCount, packet.HiddenSize, activationBytes, encoded.Length,
            iterations, GBps(encodeTicks), GBps(decodeTicks), GBps(encodeTicks + decodeTicks));
    }

    /// <summary>Hidden states shaped like a transformer's: mostly small values, a few large outlier channels.</summary>
    private static ActivationPacket SamplePacket(int rows, int hiddenSize)
    {
        var random = new Random(20240611);
        var hidden = new float[(long)rows * hiddenSize];
        for (int i = 0; i < hidden.Length; i++)
            hidden[i] = (float)(random.NextDouble() * 2 - 1) * (i % hiddenSize % 97 == 0 ? 40f : 1f);
        var tokens = new PacketRow[rows];
        for (int r = 0; r < rows; r++)
            tokens[r] = new PacketRow(r / 64, r % 64, r);
        return new ActivationPacket("benchmark", 0, 0, 1, hiddenSize, tokens, hidden);
    }
}
