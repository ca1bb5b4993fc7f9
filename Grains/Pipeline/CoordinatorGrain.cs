using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Placement;
using FtpCluster.Grains.Planning;
using FtpCluster.Grains.Wire;
using Orleans.Concurrency;

namespace FtpCluster.Grains.Pipeline;

/// <param name="Stages">How many stages (and silos) to spread the layers over.</param>
/// <param name="Storage">Weight storage type for every stage; null keeps the file's.</param>
/// <param name="Wire">Activation encoding between stages: f32, f16, bf16, int8 or int8-row.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.DeploymentRequest")]
public sealed record DeploymentRequest(
    [property: Id(0)] string ModelPath,
    [property: Id(1)] int Stages,
    [property: Id(2)] string Wire = "f32",
    [property: Id(3)] string? Storage = null,
    [property: Id(4)] int MaxMessageBytes = 32 << 20);

[GenerateSerializer, Immutable]
[Alias("FtpCluster.DeployedStage")]
public sealed record DeployedStage(
    [property: Id(0)] int Index,
    [property: Id(1)] string NodeName,
    [property: Id(2)] int FirstLayer,
    [property: Id(3)] int EndLayer,
    [property: Id(4)] string GrainKey);

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
public sealed record GenerationReply(
    [property: Id(0)] int[] PromptIds,
    [property: Id(1)] int[] Ids,
    [property: Id(2)] string FinishReason);

/// <summary>
/// Drives requests through one deployment's stages (key: the deployment id). Lives inside the
/// cluster, so a stage on a silo that died fails its caller at once instead of after a client timeout.
/// </summary>
[Alias("FtpCluster.ICoordinatorGrain")]
public interface ICoordinatorGrain : IGrainWithStringKey
{
    /// <summary>Plans the model's layers over the silos up and loads every stage.</summary>
    [Alias("Deploy")]
    Task<DeployedStage[]> Deploy(DeploymentRequest request);

    [Alias("Generate")]
    Task<GenerationReply> Generate(GenerationRequest request);

    /// <summary>Logits [ids.Length, vocab] as float32 little-endian bytes, and the vocabulary size.</summary>
    [Alias("Score")]
    Task<StepResult> Score(int[] ids);

    /// <summary>Each stage's own report: where it runs, its layers, the bytes it has sent on.</summary>
    [Alias("Reports")]
    Task<StageReport[]> Reports();
}

/// <remarks>
/// Reentrant, so many requests are in flight at once: each awaits its own steps while the stages work
/// on the others' (a stage answers only once the stages after it have).
/// </remarks>
[Reentrant]
internal sealed class CoordinatorGrain(FtpClusterNodeDirectory nodes) : Grain, ICoordinatorGrain
{
    private DeployedStage[] _stages = [];
    private ModelConfig? _config;
    private long _nextSequenceId;
    private long _nextMicrobatchId;

    private IStageGrain FirstStage => GrainFactory.GetGrain<IStageGrain>(_stages.Length > 0
        ? _stages[0].GrainKey : throw new InvalidOperationException($"deployment {this.GetPrimaryKeyString()} has not been deployed"));

    public async Task<DeployedStage[]> Deploy(DeploymentRequest request)
    {
        if (request.Stages < 1) throw new ArgumentException($"a deployment needs at least one stage, got {request.Stages}");
        WireEncodings.Parse(request.Wire);
        ModelInfo info;
        using (var checkpoint = Checkpoint.Open(request.ModelPath))
        {
            _config = checkpoint.Config;
            info = ModelInfo.Describe(checkpoint);
        }
        var up = (await nodes.ActiveNodesAsync()).OrderBy(n => n.NodeName, StringComparer.Ordinal).ToArray();
        if (up.Length < request.Stages)
            throw new InvalidOperationException(
                $"{request.Stages} stages need {request.Stages} silos, but {up.Length} are up ({string.Join(", ", up.Select(n => n.NodeName))})");
        var silos = up.Take(request.Stages).Select(n => new SiloCapacity(n.NodeName, n.Capacity, n.MemoryBudgetBytes)).ToArray();
        var plan = DeploymentPlanner.Plan(_config.Layers, silos, bytesPerLayer: info.BytesPerLayer);

        string deployment = this.GetPrimaryKeyString();
        var stages = plan.Stages.Select(s => new DeployedStage(s.Index, s.Silo, s.FirstLayer, s.EndLayer,
            NodePinnedKey.Create($"{deployment}/stage-{s.Index}", s.Silo))).ToArray();
        await Task.WhenAll(stages.Select(s => GrainFactory.GetGrain<IStageGrain>(s.GrainKey).Load(new StageSetup(
            deployment, s.Index, request.ModelPath, s.FirstLayer, s.EndLayer, IsLast: s.Index == stages.Length - 1,
            request.Storage, request.Wire, request.MaxMessageBytes,
            NextStageKey: s.Index + 1 < stages.Length ? stages[s.Index + 1].GrainKey : null))));
        _stages = stages;
        return stages;
    }

    public async Task<GenerationReply> Generate(GenerationRequest request)
    {
        var config = _config ?? throw new InvalidOperationException($"deployment {this.GetPrimaryKeyString()} has not been deployed");
        long sequence = Interlocked.Increment(ref _nextSequenceId);
        var options = new GenerationOptions
        {
            MaxTokens = request.MaxTokens,
            StopTokens = request.StopTokens.ToHashSet(),
            Sampling = new SamplingOptions { Temperature = request.Temperature, TopK = request.TopK, TopP = request.TopP, Seed = request.Seed },
        };
        async ValueTask<int> Step(int[] tokens, int firstPosition, int draw)
        {
            var result = await FirstStage.Forward(new StepRequest(
                Interlocked.Increment(ref _nextMicrobatchId), draw,
                Enumerable.Repeat(sequence, tokens.Length).ToArray(),
                Enumerable.Range(firstPosition, tokens.Length).ToArray(), tokens, Packet: null,
                [new SampleRequest(tokens.Length - 1, request.Temperature, request.TopK, request.TopP, request.Seed, draw)],
                ReturnLogits: false));
            return result.SampledTokens[0];
        }
        try
        {
            var result = await Generator.GenerateAsync(request.PromptIds, config.MaxSeqLen, options, Step);
            return new GenerationReply(result.PromptIds, result.Ids, result.FinishReason);
        }
        finally
        {
            await ReleaseEverywhere(sequence);
        }
    }

    public async Task<StepResult> Score(int[] ids)
    {
        var config = _config ?? throw new InvalidOperationException($"deployment {this.GetPrimaryKeyString()} has not been deployed");
        if (ids.Length == 0 || ids.Length > config.MaxSeqLen)
            throw new ArgumentException($"scoring needs 1 to {config.MaxSeqLen} tokens, got {ids.Length}");
        long sequence = Interlocked.Increment(ref _nextSequenceId);
        try
        {
            return await FirstStage.Forward(new StepRequest(
                Interlocked.Increment(ref _nextMicrobatchId), 0,
                Enumerable.Repeat(sequence, ids.Length).ToArray(), Enumerable.Range(0, ids.Length).ToArray(), ids,
                Packet: null, Samples: [], ReturnLogits: true));
        }
        finally
        {
            await ReleaseEverywhere(sequence);
        }
    }

    public async Task<StageReport[]> Reports() =>
        await Task.WhenAll(_stages.Select(s => GrainFactory.GetGrain<IStageGrain>(s.GrainKey).Report()));

    private Task ReleaseEverywhere(long sequence) =>
        Task.WhenAll(_stages.Select(s => GrainFactory.GetGrain<IStageGrain>(s.GrainKey).Release([sequence])));
}
