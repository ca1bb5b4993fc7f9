using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using FtpCluster.Compute.Models;

namespace FtpCluster.Compute.Ftp;

/// <summary>
/// What a router artifact is tied to: "sha256:" and the hex SHA-256 of the model's config and of a fixed,
/// deterministic sample of every tensor's weights. It reads a few kilobytes per tensor whatever the model's
/// size, so it is fast for large models; any change to the config, a tensor's type or shape, or the
/// sampled weights changes it. (A change only between samples does not: it guards against the wrong model,
/// not against tampering.)
/// </summary>
public static class ModelFingerprint
{
    /// <summary>Samples per tensor, evenly spread from its first element to its last.</summary>
    private const int Samples = 16;

    /// <summary>Consecutive elements per sample.</summary>
    private const int SampleLength = 64;

    public static string Of(ICheckpoint checkpoint)
    {
        var c = checkpoint.Config;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(Describe(c)));
        var sample = new float[SampleLength];
        foreach (var (role, layer) in CheckpointTensors.All(c))
        {
            var tensor = CheckpointTensors.Require(checkpoint, role, layer);
            sha.AppendData(Encoding.UTF8.GetBytes($"\n{role} {layer} {tensor.DType} {tensor.ShapeText}\n"));
            int length = (int)Math.Min(SampleLength, tensor.ElementCount);
            long last = tensor.ElementCount - length;
            for (int k = 0; k < Samples; k++)
            {
                tensor.CopyTo(sample.AsSpan(0, length), last * k / (Samples - 1));
                sha.AppendData(MemoryMarshal.AsBytes(sample.AsSpan(0, length)));
            }
        }
        return "sha256:" + Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Every field of the config by name, numbers in round-trip invariant form: a stable text to hash.</summary>
    private static string Describe(ModelConfig c)
    {
        var inv = CultureInfo.InvariantCulture;
        var s = c.RopeScaling;
        return string.Join("\n",
            $"architecture={c.Architecture}", $"dim={c.Dim}", $"hidden_dim={c.HiddenDim}", $"layers={c.Layers}",
            $"heads={c.Heads}", $"kv_heads={c.KvHeads}", $"head_dim={c.HeadDim}", $"vocab={c.VocabSize}",
            $"max_seq_len={c.MaxSeqLen}", $"rms_norm_eps={c.RmsNormEps.ToString("R", inv)}",
            $"rope_theta={c.RopeTheta.ToString("R", inv)}",
            s is null ? "rope_scaling=none"
                : $"rope_scaling={s.Factor.ToString("R", inv)},{s.LowFreqFactor.ToString("R", inv)},{s.HighFreqFactor.ToString("R", inv)},{s.OriginalMaxPositions}",
            $"rope_layout={c.RopeLayout}", $"tied_embeddings={c.TiedEmbeddings}", $"attention_bias={c.AttentionBias}")
            // Only where there are factors, so that the fingerprints of every other model stay what they were.
            + (c.RopeFrequencyFactors is { } factors ? $"\nrope_frequency_factors={string.Join(",", factors.Select(f => f.ToString("R", inv)))}" : "");
    }
}
