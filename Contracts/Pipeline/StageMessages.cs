using FtpCluster.Compute.Inference;

namespace FtpCluster.Grains.Pipeline;

/// <summary>What a stage grain loads and where it sends its output.</summary>
/// <param name="Token">The placement's secret: every later call of the stage must carry it (<see cref="DeploymentToken"/>).</param>
/// <param name="ModelPath">The model file or folder; the silo refuses one outside its model roots before opening it.</param>
/// <param name="Storage">Weight storage type ("f32", "f16", "bf16"); null keeps the file's.</param>
/// <param name="Wire">Encoding of the activations this stage sends on ("f32", "f16", "bf16", "int8", "int8-row").</param>
/// <param name="StageKeys">Every stage's grain key, in order: a row may go straight to any later stage.</param>
/// <param name="StageEnds">Every stage's end layer: stage i holds layers [StageEnds[i - 1], StageEnds[i]).</param>
/// <param name="Routers">FTP router artifacts; the first stage makes each microbatch's one-pass plan with the one the
/// microbatch names (<see cref="StepRequest.Router"/>). Empty: dense.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.StageSetup")]
public sealed record StageSetup(
    [property: Id(0)] string DeploymentId,
    [property: Id(14)] DeploymentToken Token,
    [property: Id(1)] int Index,
    [property: Id(2)] string ModelPath,
    [property: Id(3)] int FirstLayer,
    [property: Id(4)] int EndLayer,
    [property: Id(5)] bool IsLast,
    [property: Id(6)] string? Storage,
    [property: Id(7)] string Wire,
    [property: Id(8)] int MaxMessageBytes,
    [property: Id(9)] string[] StageKeys,
    [property: Id(10)] int[] StageEnds,
    [property: Id(11)] string[]? Routers = null,
    [property: Id(12)] bool StageAwareRouting = false,
    [property: Id(13)] bool PruneNewest = false)
{
    // Records compare arrays by reference; a repeated Load must compare by contents.
    public bool Equals(StageSetup? other) =>
        other is not null && EqualityContract == other.EqualityContract
        && (DeploymentId, Index, ModelPath, FirstLayer, EndLayer, IsLast, Storage, Wire, MaxMessageBytes, StageAwareRouting, PruneNewest)
            == (other.DeploymentId, other.Index, other.ModelPath, other.FirstLayer, other.EndLayer, other.IsLast, other.Storage, other.Wire,
                other.MaxMessageBytes, other.StageAwareRouting, other.PruneNewest)
        && Token == other.Token
        && (Routers ?? []).SequenceEqual(other.Routers ?? [])
        && StageKeys.SequenceEqual(other.StageKeys) && StageEnds.SequenceEqual(other.StageEnds);

    public override int GetHashCode() => HashCode.Combine(DeploymentId, Index, FirstLayer, EndLayer);
}

/// <summary>Draw a token after row <paramref name="Row"/> of the microbatch, as draw <paramref name="Draw"/> of its sequence.</summary>
/// <param name="Logprobs">Also answer the drawn token's log-probability and this many most likely alternatives; -1: neither.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.SampleRequest")]
public sealed record SampleRequest(
    [property: Id(0)] int Row,
    [property: Id(1)] float Temperature,
    [property: Id(2)] int TopK,
    [property: Id(3)] float TopP,
    [property: Id(4)] int Seed,
    [property: Id(5)] int Draw,
    [property: Id(6)] int Logprobs = -1)
{
    public SamplingOptions Sampling => new() { Temperature = Temperature, TopK = TopK, TopP = TopP, Seed = Seed };
}

/// <summary>
/// One microbatch step travelling down the pipeline. The first stage gets token ids; every later stage
/// gets the activation packet its predecessor encoded (which carries the rows' sequences and positions),
/// possibly with no rows: the call itself goes stage to stage, so the rows an earlier stage deposited
/// straight to this one are there before it (see <see cref="IStageGrain.Deposit"/>).
/// </summary>
/// <param name="Router">Which of the deployment's routers plans the microbatch's rows at the first stage; -1: dense.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.StepRequest")]
public sealed record StepRequest(
    [property: Id(0)] long MicrobatchId,
    [property: Id(1)] long[]? SequenceIds,
    [property: Id(2)] int[]? Positions,
    [property: Id(3)] int[]? Tokens,
    [property: Id(4)] byte[]? Packet,
    [property: Id(5)] SampleRequest[] Samples,
    [property: Id(6)] bool ReturnLogits,
    [property: Id(7)] int Router = -1);

/// <summary>
/// The drawn token's log-probability under the model (the log-softmax of its logits, before temperature and
/// truncation) and the most likely tokens with theirs, most likely first.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.SampledLogprobs")]
public sealed record SampledLogprobs(
    [property: Id(0)] float Logprob,
    [property: Id(1)] int[] TopTokens,
    [property: Id(2)] float[] TopLogprobs);

/// <summary>
/// What one microbatch cost one sequence: block computations of its rows done and skipped (over every block of
/// the model, as the first stage's plan decided them) and the bytes of its rows sent between stages.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.SequenceUsage")]
public sealed record SequenceUsage(
    [property: Id(0)] long SequenceId,
    [property: Id(1)] long TokensComputed,
    [property: Id(2)] long TokensSkipped,
    [property: Id(3)] long WireBytes)
{
    public SequenceUsage Plus(SequenceUsage other) =>
        this with { TokensComputed = TokensComputed + other.TokensComputed, TokensSkipped = TokensSkipped + other.TokensSkipped, WireBytes = WireBytes + other.WireBytes };

    /// <summary>The two lists summed per sequence.</summary>
    public static SequenceUsage[] Merge(IEnumerable<SequenceUsage> a, IEnumerable<SequenceUsage> b) =>
        [.. a.Concat(b).GroupBy(u => u.SequenceId).Select(g => g.Aggregate((x, y) => x.Plus(y)))];
}

/// <summary>What the last stage answers: a token per sample request, and the logits when asked for.</summary>
/// <param name="Logits">float32 little-endian [rows, vocab] of every row of the microbatch, or null.</param>
/// <param name="Logprobs">Per sample request, its log-probabilities when it asked for them, else null.</param>
/// <param name="Usage">Per sequence of the microbatch, what the stages spent on it (each stage adds its part on the way back).</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.StepResult")]
public sealed record StepResult(
    [property: Id(0)] int[] SampledTokens,
    [property: Id(1)] byte[]? Logits,
    [property: Id(2)] int VocabSize,
    [property: Id(3)] SampledLogprobs?[]? Logprobs = null,
    [property: Id(4)] SequenceUsage[]? Usage = null)
{
    /// <summary>The logits as floats; empty when none were asked for.</summary>
    public float[] LogitValues() =>
        Logits is null ? [] : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Logits).ToArray();
}

/// <summary>One stage's own account: where it runs, what it holds, and what it has computed and sent on.</summary>
/// <param name="Microbatches">Microbatches this stage has computed; with <paramref name="Rows"/>, how well steps were shared.</param>
/// <param name="ComputeSeconds">Time this stage's work held its silo's compute thread (blocks, embedding or LM head, packet codec).</param>
/// <param name="KvCacheBytes">The device memory the caches of the sequences in flight hold now.</param>
/// <param name="PeakKvCacheBytes">The most its caches held after a step, since the stage was loaded: what its budget had to hold.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.StageReport")]
public sealed record StageReport(
    [property: Id(0)] int Index,
    [property: Id(1)] string NodeName,
    [property: Id(2)] int FirstLayer,
    [property: Id(3)] int EndLayer,
    [property: Id(4)] long WeightBytes,
    [property: Id(5)] int SequencesInFlight,
    [property: Id(6)] long BytesSent,
    [property: Id(7)] long PacketsSent,
    [property: Id(8)] int ProcessId,
    [property: Id(9)] long Microbatches,
    [property: Id(10)] long Rows,
    [property: Id(11)] double ComputeSeconds,
    [property: Id(12)] long KvCacheBytes,
    [property: Id(13)] long PeakKvCacheBytes);
