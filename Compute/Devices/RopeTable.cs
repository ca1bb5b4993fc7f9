using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Devices;

/// <summary>
/// Rotary embedding frequencies of one model: per pair i of a head, the angle per position
/// θ_i = theta^(-2i/headDim), with Llama-3 scaling applied when the config asks for it
/// (as parameters or as per-pair frequency factors).
/// </summary>
public sealed class RopeTable
{
    public RopeTable(ModelConfig config)
    {
        HeadDim = config.HeadDim;
        Layout = config.RopeLayout;
        InverseFrequencies = new float[HeadDim / 2];
        for (int i = 0; i < HeadDim / 2; i++)
        {
            double freq = BaseFrequency(config.RopeTheta, i, HeadDim);
            if (config.RopeScaling is { } s)
                freq = s.Scale(freq);
            if (config.RopeFrequencyFactors is { } factors)
                freq /= factors[i];
            InverseFrequencies[i] = (float)freq;
        }
    }

    public int HeadDim { get; }
    public RopeLayout Layout { get; }

    /// <summary>θ_i per pair, as float32 the way reference implementations compute them.</summary>
    public float[] InverseFrequencies { get; }

    /// <summary>Pair i's frequency before any scaling: theta^(-2i/headDim).</summary>
    public static double BaseFrequency(float ropeTheta, int pair, int headDim) => 1.0 / Math.Pow(ropeTheta, 2.0 * pair / headDim);
}
