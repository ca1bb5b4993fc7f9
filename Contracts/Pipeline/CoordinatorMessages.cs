using FtpCluster.Grains.Wire;

namespace FtpCluster.Grains.Pipeline;

/// <param name="Stages">How many stages (and silos) to spread the layers over.</param>
/// <param name="Storage">Weight storage type for every stage; null keeps the file's.</param>
/// <param name="Wire">Activation encoding between stages: f32, f16, bf16, int8 or int8-row.</param>
/// <param name="MaxMessageBytes">
/// The largest activation packet (and logits reply) a stage sends; at most Orleans' message body limit less
/// <see cref="MessageLimits.EnvelopeBytes"/>.
/// </param>
/// <param name="MaxMicrobatchRows">Rows the coordinator gathers into one microbatch (fewer when the message limit allows fewer).</param>
/// <param name="MicrobatchesInFlight">Microbatches in the pipeline at once; 0 means one per stage.</param>
/// <param name="Routers">FTP: router artifacts (from <c>ftpcluster calibrate</c>) readable by the silos; a request picks
/// one by its sparsity, and the first serves the requests that name none. None: the model runs dense.</param>
/// <param name="StageAwareRouting">FTP: the one-pass plan keeps one set of tokens per stage, so a skipped token skips whole stages and never crosses to them.</param>
/// <param name="PruneNewest">FTP: let the router skip a sequence's newest token too (decode pruning).</param>
/// <param name="Tokenizer">The tokenizer requests' text is encoded with, readable by the silos; null: the one beside the model.</param>
/// <param name="ServedName">The name requests give as their <c>model</c> (besides the model's path); null: the model's file or folder name.</param>
/// <param name="MaxSequences">Sequences generating at once; more wait for admission.</param>
/// <param name="PrefillChunkTokens">Prompt tokens one step feeds at most, so long prompts do not starve other sequences' decode steps.</param>
/// <param name="KvCacheBytesPerStage">KV-cache bytes each stage may hold for the sequences admitted; 0: its silo's memory budget less its weights.</param>
/// <param name="IdleUnloadSeconds">A deployment nothing has used for this long (no request, no job, nothing running) is
/// unloaded, freeing its stages' memory; 0 keeps it until <c>cluster unload</c>. Default 30 minutes.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.DeploymentRequest")]
public sealed record DeploymentRequest(
    [property: Id(0)] string ModelPath,
    [property: Id(1)] int Stages,
    [property: Id(2)] string Wire = "f32",
    [property: Id(3)] string? Storage = null,
    [property: Id(4)] int MaxMessageBytes = MessageLimits.DefaultPacketBytes,
    [property: Id(5)] int MaxMicrobatchRows = 512,
    [property: Id(6)] int MicrobatchesInFlight = 0,
    [property: Id(7)] string[]? Routers = null,
    [property: Id(8)] bool StageAwareRouting = false,
    [property: Id(9)] bool PruneNewest = false,
    [property: Id(10)] string? Tokenizer = null,
    [property: Id(11)] string? ServedName = null,
    [property: Id(12)] int MaxSequences = 256,
    [property: Id(13)] int PrefillChunkTokens = 256,
    [property: Id(14)] long KvCacheBytesPerStage = 0,
    [property: Id(15)] int IdleUnloadSeconds = DeploymentRequest.DefaultIdleUnloadSeconds)
{
    public const int DefaultIdleUnloadSeconds = 30 * 60;

    /// <summary>The router artifacts, none when the model runs dense.</summary>
    public string[] RouterPaths => Routers ?? [];

    /// <summary>The router of requests that pick none: the first, or -1 (dense) without routers.</summary>
    public int DefaultRouter => RouterPaths.Length > 0 ? 0 : -1;
}

/// <summary>What <c>cluster deployments</c> shows of one deployment.</summary>
/// <param name="Stages">Each stage's report: its silo, layers, weight and KV-cache bytes.</param>
/// <param name="SequencesRunning">Sequences generating now; <paramref name="SequencesWaiting"/> wait for admission.</param>
/// <param name="DeployedAt">When it was last deployed (a coordinator that resumed it keeps the time).</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.DeploymentInfo")]
public sealed record DeploymentInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] DeploymentRequest Request,
    [property: Id(2)] StageReport[] Stages,
    [property: Id(3)] int SequencesRunning,
    [property: Id(4)] int SequencesWaiting,
    [property: Id(5)] int Jobs,
    [property: Id(6)] DateTimeOffset LastUsedAt,
    [property: Id(7)] DateTimeOffset DeployedAt);

/// <param name="PlannedShare">The stage's share of the model's compute as the planner expected it: its layers'
/// costs (1 per layer, or with a router the fraction of tokens each computes) over the total.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.DeployedStage")]
public sealed record DeployedStage(
    [property: Id(0)] int Index,
    [property: Id(1)] string NodeName,
    [property: Id(2)] int FirstLayer,
    [property: Id(3)] int EndLayer,
    [property: Id(4)] string GrainKey,
    [property: Id(5)] double PlannedShare);

[GenerateSerializer, Immutable]
[Alias("FtpCluster.GenerationRequest")]
public sealed record GenerationRequest(
    [property: Id(0)] int[] PromptIds,
    [property: Id(1)] int MaxTokens,
    [property: Id(2)] int[] StopTokens,
    [property: Id(3)] float Temperature = 0,
    [property: Id(4)] int TopK = 0,
    [property: Id(5)] float TopP = 1,
    [property: Id(6)] int Seed = 0);

[GenerateSerializer, Immutable]
[Alias("FtpCluster.GenerationReply")]
/// <param name="Stages">The plan the generation finished on (a different one if a silo was lost on the way).</param>
public sealed record GenerationReply(
    [property: Id(0)] int[] PromptIds,
    [property: Id(1)] int[] Ids,
    [property: Id(2)] string FinishReason,
    [property: Id(3)] DeployedStage[] Stages);
