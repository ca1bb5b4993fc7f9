namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// The settings of a <see cref="DeploymentRequest"/> that a live deployment keeps: a deploy that asks for the same ones
/// finds it as it is; one that asks for others is refused with the settings that differ, since changing them under the
/// sequences and jobs already running would mix two deployments.
/// </summary>
internal static class DeploymentSettings
{
    private static readonly (string Name, Func<DeploymentRequest, string> Value)[] Settings =
    [
        ("model", r => r.ModelPath),
        ("stages", r => $"{r.Stages}"),
        ("wire", r => r.Wire),
        ("dtype", r => r.Storage ?? "the file's"),
        ("message limit", r => $"{r.MaxMessageBytes}"),
        ("microbatch rows", r => $"{r.MaxMicrobatchRows}"),
        ("microbatches in flight", r => $"{r.MicrobatchesInFlight}"),
        ("routers", r => r.RouterPaths.Length == 0 ? "none" : string.Join(",", r.RouterPaths)),
        ("stage-aware routing", r => $"{r.StageAwareRouting}"),
        ("prune newest", r => $"{r.PruneNewest}"),
        ("tokenizer", r => r.Tokenizer ?? "the model's"),
        ("served name", r => r.ServedName ?? "the model's"),
        ("max sequences", r => $"{r.MaxSequences}"),
        ("prefill chunk tokens", r => $"{r.PrefillChunkTokens}"),
        ("KV-cache bytes per stage", r => $"{r.KvCacheBytesPerStage}"),
        ("idle unload seconds", r => $"{r.IdleUnloadSeconds}"),
    ];

    /// <summary>Each setting that differs, as "name: live → asked"; empty when the two ask for the same deployment.</summary>
    public static string[] Differences(DeploymentRequest live, DeploymentRequest asked) =>
        [.. Settings.Where(s => s.Value(live) != s.Value(asked)).Select(s => $"{s.Name}: {s.Value(live)} → {s.Value(asked)}")];
}
