using FtpCluster.Grains.Wire;

namespace FtpCluster.Grains.Tests.Wire;

/// <summary>Packets for the wire tests, reproducible from a seed.</summary>
internal static class WirePackets
{
    public static ActivationPacket Uniform(int rows, int hidden, int seed = 1, float magnitude = 1f,
        string deploymentId = "dep-1") =>
        With(deploymentId, rows, hidden, seed, (random, _, _) => (float)(random.NextDouble() * 2 - 1) * magnitude);

    public static ActivationPacket With(string deploymentId, int rows, int hidden, int seed,
        Func<Random, int, int, float> value)
    {
        var random = new Random(seed);
        var hiddenStates = new float[rows * hidden];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < hidden; c++)
                hiddenStates[r * hidden + c] = value(random, r, c);
        var tokens = new PacketRow[rows];
        for (int r = 0; r < rows; r++)
            tokens[r] = new PacketRow(1000 + r / 4, r % 4, r);
        return new ActivationPacket(deploymentId, 42, 1, 2, hidden, tokens, hiddenStates);
    }

    public static ActivationPacket WithHidden(ActivationPacket packet, float[] hiddenStates) =>
        new(packet.DeploymentId, packet.MicrobatchId, packet.SourceStage, packet.TargetStage,
            packet.HiddenSize, packet.Rows, hiddenStates);

    public static float[] RoundTrip(ActivationPacket packet, WireEncoding encoding) =>
        ActivationCodec.Decode(ActivationCodec.Encode(packet, encoding, int.MaxValue)).HiddenStates;
}
