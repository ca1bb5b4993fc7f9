using System.Text.Json.Serialization;

namespace FtpCluster.Compute.Evaluation;

/// <summary>One stage of a pruned deployment: the compute the plan expected of it against what it took.</summary>
public sealed record StageCompute(
    [property: JsonPropertyName("silo")] string Silo,
    [property: JsonPropertyName("layers")] int[] Layers,
    [property: JsonPropertyName("planned_share")] double PlannedShare,
    [property: JsonPropertyName("measured_share")] double MeasuredShare,
    [property: JsonPropertyName("compute_seconds")] double ComputeSeconds);

/// <summary>What one router's deployment measured through the stages.</summary>
public sealed record ClusterMeasure(
    [property: JsonPropertyName("router")] string Router,
    [property: JsonPropertyName("wire")] string Wire,
    [property: JsonPropertyName("dense_f32_bytes")] long DenseBytes,
    [property: JsonPropertyName("pruned_bytes")] long PrunedBytes,
    [property: JsonPropertyName("stages")] StageCompute[] Stages)
{
    [JsonPropertyName("wire_bytes_ratio")]
    public double WireBytesRatio => DenseBytes == 0 ? 0 : (double)PrunedBytes / DenseBytes;
}

