using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Devices;

/// <summary>
/// Rotary embedding frequencies of one model: per pair i of a head, the angle per position
/// θ_i = theta^(-2i/headDim), with Llama-3 scaling applied when the config asks for it.
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
            double freq = 1.0 / Math.Pow(config.RopeTheta, 2.0 * i / HeadDim);
            if (config.RopeScaling is { } s)
                freq = ScaleLlama3(freq, s);
            InverseFrequencies[i] = (float)freq;
        }
    }

    public int HeadDim { get; }
    public RopeLayout Layout { get; }

    /// <summary>θ_i per pair, as float32 the way reference implementations compute them.</summary>
    public float[] InverseFrequencies { get; }

    /// <summary>Llama 3.1: long wavelengths are divided by the factor, short ones kept, the band between blended.</summary>
    private static double ScaleLlama3(double freq, Llama3RopeScaling s)
    {
        double lowFreqWavelen = s.OriginalMaxPositions / s.LowFreqFactor;
        double highFreqWavelen = s.OriginalMaxPositions / s.HighFreqFactor;
        double wavelen = 2 * Math.PI / freq;
        if (wavelen < highFreqWavelen) return freq;
        if (wavelen > lowFreqWavelen) return freq / s.Factor;
        double smooth = (s.OriginalMaxPositions / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        return (1 - smooth) * freq / s.Factor + smooth * freq;
    }
}
