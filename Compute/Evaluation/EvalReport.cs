using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FtpCluster.Compute.Evaluation;

/// <summary>
/// One method at one target sparsity against the dense model. Ratios are the method's figure over the
/// dense model's. The continuation figures (ppl, top1_agreement, kl) are the headline; the full_ ones
/// cover every prediction of the sequence.
/// </summary>
public sealed record MethodResult
{
    [JsonPropertyName("method")] public required string Method { get; init; }
    [JsonPropertyName("routing")] public required string Routing { get; init; }

    /// <summary>
    /// A stage-aware one-pass plan's stage segments, [first, end) blocks each, for which it chose one set of
    /// rows per segment instead of per block; null when rows were chosen per block.
    /// </summary>
    [JsonPropertyName("stages")] public int[][]? Stages { get; init; }

    /// <summary>The routing as the table and plot name it: "one-pass/3 stages" for a stage-aware plan.</summary>
    [JsonIgnore] public string RoutingLabel => Stages is null ? Routing : $"{Routing}/{Stages.Length} stages";
    [JsonPropertyName("sparsity_target")] public required double SparsityTarget { get; init; }

    /// <summary>Fraction of (token, block) pairs not computed, over every token of every sequence.</summary>
    [JsonPropertyName("sparsity_achieved")] public required double SparsityAchieved { get; init; }

    [JsonPropertyName("ppl")] public required double Perplexity { get; init; }
    [JsonPropertyName("ppl_ratio")] public required double PerplexityRatio { get; init; }
    [JsonPropertyName("top1_agreement")] public required double Top1Agreement { get; init; }

    /// <summary>Mean KL(dense || method) over the continuation's predictions, in nats.</summary>
    [JsonPropertyName("kl")] public required double Kl { get; init; }

    [JsonPropertyName("flops_ratio")] public required double FlopsRatio { get; init; }

    /// <summary>
    /// Bytes sent between stages over what dense f32 sends through the same stages. Null in a single-process
    /// run, where nothing crosses a wire; a run through stages (<c>--stages</c>) fills it in. Always written,
    /// so the key is there for scripts either way.
    /// </summary>
    [JsonPropertyName("wire_bytes_ratio")] public double? WireBytesRatio { get; init; }

    /// <summary>Per block, the fraction of tokens it did not compute.</summary>
    [JsonPropertyName("block_sparsity")] public required double[] BlockSparsity { get; init; }

    [JsonPropertyName("full_ppl")] public required double FullPerplexity { get; init; }
    [JsonPropertyName("full_ppl_ratio")] public required double FullPerplexityRatio { get; init; }
    [JsonPropertyName("full_top1_agreement")] public required double FullTop1Agreement { get; init; }
    [JsonPropertyName("full_kl")] public required double FullKl { get; init; }
}

/// <summary>What <c>ftpcluster eval --json</c> prints: one object that scripts can rely on.</summary>
public sealed record EvalReport
{
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("data")] public required string Data { get; init; }
    [JsonPropertyName("sequences")] public required int Sequences { get; init; }

    /// <summary>Continuation tokens predicted over all sequences: the sample behind ppl, top1_agreement and kl.</summary>
    [JsonPropertyName("continuation_tokens")] public required long ContinuationTokens { get; init; }

    [JsonPropertyName("results")] public required IReadOnlyList<MethodResult> Results { get; init; }

    /// <summary>Every token of every sequence (the sample behind the sparsity and FLOPs figures).</summary>
    [JsonPropertyName("tokens")] public required long Tokens { get; init; }

    /// <summary>The data methods calibrated on; the evaluation data itself when null.</summary>
    [JsonPropertyName("calibration")] public string? Calibration { get; init; }

    /// <summary>Evaluation sequences that also occur in the calibration data (0 when none; null without separate calibration data).</summary>
    [JsonPropertyName("calibration_overlap")] public int? CalibrationOverlap { get; init; }

    /// <summary>The router artifacts evaluated (eval --router); null without any.</summary>
    [JsonPropertyName("routers")] public IReadOnlyList<string>? Routers { get; init; }

    /// <summary>With eval --stages: per router, the bytes between stages against dense f32 and each stage's compute against the plan.</summary>
    [JsonPropertyName("cluster")] public IReadOnlyList<ClusterMeasure>? Cluster { get; init; }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        // A diverging method can reach an infinite perplexity; it is reported, not a crash.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>The results as a plain table with aligned columns, for the terminal.</summary>
    public string ToTable()
    {
        string[] header = ["method", "routing", "target", "achieved", "ppl", "ppl ratio", "top-1", "KL", "FLOPs", "wire"];
        var rows = Results.Select(r => new[]
        {
            r.Method, r.RoutingLabel, Percent(r.SparsityTarget), Percent(r.SparsityAchieved),
            Number(r.Perplexity, "F3"), Number(r.PerplexityRatio, "F4"), Percent(r.Top1Agreement),
            Number(r.Kl, "F5"), Number(r.FlopsRatio, "F3"), r.WireBytesRatio is { } w ? Number(w, "F3") : "-",
        }).ToList();
        var widths = header.Select((h, c) => rows.Select(r => r[c].Length).Prepend(h.Length).Max()).ToArray();

        var table = new StringBuilder();
        void Line(string[] cells)
        {
            // Names align left, numbers right, so digits line up.
            var padded = cells.Select((cell, c) => c < 2 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]));
            table.AppendLine(string.Join("  ", padded).TrimEnd());
        }
        Line(header);
        Line([.. widths.Select(w => new string('-', w))]);
        foreach (var row in rows) Line(row);
        table.Append(CultureInfo.InvariantCulture,
            $"{Sequences} sequences, {Tokens} tokens; ppl, top-1 and KL over {ContinuationTokens} continuation tokens");
        return table.ToString();
    }

    private static string Percent(double value) => (100 * value).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private static string Number(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
