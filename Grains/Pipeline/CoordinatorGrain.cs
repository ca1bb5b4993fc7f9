using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Placement;
using FtpCluster.Grains.Planning;
using FtpCluster.Grains.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Configuration;

namespace FtpCluster.Grains.Pipeline;

/// <remarks>
/// Reentrant, so many requests are in flight at once: each awaits its own steps while the stages work
/// on the others' (a stage answers only once the stages after it have).
/// When a step fails because a silo is gone, the coordinator re-plans the layers over the silos still
/// up (once, however many requests saw the failure), and each request replays its tokens so far into
/// the new stages' empty caches before going on. Sampling depends only on (seed, draw), and an f32
/// wire is exact, so the output is the one a fault-free run gives.
/// </remarks>
/// <summary>
/// What a coordinator keeps in grain storage: a new activation of it (after its silo died, or after the
/// directory lost its entry) picks up the deployment and its current plan instead of starting empty.
/// </summary>
[GenerateSerializer]
[Alias("FtpCluster.DeploymentRecord")]
public sealed class DeploymentRecord
{
    [Id(0)] public DeploymentRequest? Request { get; set; }
    [Id(1)] public DeployedStage[] Stages { get; set; } = [];
    [Id(2)] public int Placements { get; set; }
    [Id(3)] public string[] LostNodes { get; set; } = [];
}

[Reentrant]
[CollectionAgeLimit(AlwaysActive = true)] // the deployment's plan lives here (and in storage)
internal sealed class CoordinatorGrain(
    FtpClusterNodeDirectory nodes, FtpClusterSiloOptions localNode, IOptions<SiloMessagingOptions> messaging, ILogger<CoordinatorGrain> logger,
    [PersistentState("deployment", FtpClusterSiloBuilderExtensions.DeploymentStorage)] IPersistentState<DeploymentRecord> record)
    : Grain, ICoordinatorGrain, IDisposable
{
    /// <summary>How long recovery from a lost silo may take before the request fails.</summary>
    private static readonly TimeSpan RecoveryDeadline = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Pause between placement attempts while the cluster has not yet declared the lost silo dead (until
    /// then, activations whose directory entry lives on it cannot be registered).
    /// </summary>
    private static readonly TimeSpan PlacementRetryDelay = TimeSpan.FromMilliseconds(500);

    /// <summary>Re-plans one request may go through before it fails with the last error.</summary>
    private const int MaxRecoveriesPerRequest = SequenceScheduler.MaxRecoveriesPerSequence;

    /// <summary>How long a probe of a stage's silo may take before that silo counts as gone.</summary>
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    private readonly HashSet<string> _lostNodes = new(StringComparer.Ordinal);
    private DeploymentRequest? _request;
    private ModelConfig? _config;
    private long _bytesPerLayer;
    private double[]? _layerCosts;
    private DeployedStage[] _stages = [];
    private int _epoch;
    private int _placements;
    private Task? _recovery;
    private long _nextMicrobatchId;
    private long _maxCachedTokens = long.MaxValue;
    private SequenceScheduler? _scheduler;
    private JobLines? _jobs;
    private CompletionRequests? _requests;

    private SequenceScheduler Scheduler => _scheduler ??= new SequenceScheduler(
        new MicrobatchQueue(SendMicrobatch, () => _epoch, MicrobatchLimits), () => _epoch, Recover, ReleaseEverywhere, SchedulerLimits, Config.MaxSeqLen);

    private JobLines Jobs => _jobs ??= new JobLines(RunLine, TimeProvider.System);

    /// <summary>Cancelled when the deployment is unloaded: everything that runs on it stops within a step.</summary>
    private CancellationTokenSource _unloading = new();

    /// <summary>When a request, a job or a deploy last touched the deployment (for <see cref="DeploymentRequest.IdleUnloadSeconds"/>).</summary>
    private DateTimeOffset _lastUse = DateTimeOffset.UtcNow;

    private CompletionRequests Requests => _requests ??= CompletionRequests.Open(_request!, Config, Scheduler);

    private ModelConfig Config => _config ?? throw new InvalidOperationException($"deployment {this.GetPrimaryKeyString()} has not been deployed");

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // A job whose client stopped collecting must not keep the stages busy for nobody.
        this.RegisterGrainTimer(LookForIdleWork, new GrainTimerCreationOptions(JobLines.IdleTimeout / 4, JobLines.IdleTimeout / 4) { Interleave = true });
        if (record.State.Request is not { } request) return;
        try
        {
            ReadModel(request);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
            logger.LogWarning("Deployment {Deployment}: the stored deployment of {Model} cannot be resumed ({Error}); it must be deployed again",
                this.GetPrimaryKeyString(), request.ModelPath, e.Message);
            return;
        }
        (_request, _stages, _placements) = (request, record.State.Stages, record.State.Placements);
        _lostNodes.UnionWith(record.State.LostNodes);
        await ReleaseCachesOfEarlierActivations();
        logger.LogInformation("Deployment {Deployment}: resumed on {Node} with its stored plan: {Plan}", this.GetPrimaryKeyString(),
            localNode.NodeName, string.Join(", ", _stages.Select(s => $"{s.NodeName} [{s.FirstLayer}, {s.EndLayer})")));
        await base.OnActivateAsync(cancellationToken);
    }

    /// <summary>
    /// The stages that outlived this deployment's previous coordinator still hold the caches of its sequences, which
    /// nobody will release now: free them. (This activation's sequence ids start at a random point too, so a step of
    /// the old one still on its way through the stages cannot meet a new sequence's cache.)
    /// </summary>
    private async Task ReleaseCachesOfEarlierActivations()
    {
        await Task.WhenAll(_stages.Select(async s =>
        {
            try
            {
                await Stage(s).ReleaseAll();
            }
            catch (Exception e) when (ClusterFailures.IsStageLoss(e))
            {
                // Its silo is gone too: the first step re-plans, and the new stages start empty.
            }
        }));
    }

    public async Task<DeployedStage[]> Deploy(DeploymentRequest request)
    {
        if (request.Stages < 1) throw new ArgumentException($"a deployment needs at least one stage, got {request.Stages}");
        WireEncodings.Parse(request.Wire);
        // Orleans closes a connection that carries a message over its limit: packets must stay under it.
        int orleansLimit = messaging.Value.MaxMessageBodySize;
        int packetLimit = orleansLimit - MessageLimits.EnvelopeBytes;
        if (request.MaxMessageBytes < 1 || request.MaxMessageBytes > packetLimit)
            throw new ArgumentException($"a deployment's message limit must be 1 to {packetLimit} bytes (Orleans' message body limit of " +
                $"{orleansLimit} less {MessageLimits.EnvelopeBytes} for the rest of a step's message), got {request.MaxMessageBytes}");
        ReadModel(request);
        _request = request;
        if (_unloading.IsCancellationRequested)
        {
            // Deployed again after an unload: what runs from now on must not see the old cancellation.
            _unloading.Dispose();
            _unloading = new CancellationTokenSource();
        }
        _stages = await Place(firstPlacement: true);
        await SaveDeployment();
        await GrainFactory.GetGrain<IDeploymentListGrain>(0).Add(this.GetPrimaryKeyString());
        _lastUse = DateTimeOffset.UtcNow;
        return _stages;
    }

    /// <summary>The model's shape and costs: its config, bytes per layer, and with a router each layer's share of the tokens.</summary>
    private void ReadModel(DeploymentRequest request)
    {
        try
        {
            using var checkpoint = Checkpoint.Open(request.ModelPath);
            _config = checkpoint.Config;
            _bytesPerLayer = ModelInfo.Describe(checkpoint).BytesPerLayer;
            // A pruned block costs in proportion to the tokens it computes (block 0 plans the one pass and computes all).
            // Every artifact must be this model's; the plan costs layers by the first (what requests that name none use).
            var artifacts = request.RouterPaths.Select(r => RouterArtifact.Load(r, checkpoint)).ToArray();
            _layerCosts = artifacts.Length == 0 ? null
                : [.. artifacts[0].Schedule.PerBlock.Select((s, b) => b == 0 ? 1.0 : 1.0 - s)];
        }
        catch (ModelFormatException e)
        {
            // Compute has no Orleans codecs: carry the message (file and tensor) alone, in an exception that has one.
            throw new InvalidOperationException(e.Message);
        }
    }

    private async Task SaveDeployment()
    {
        var state = new DeploymentRecord
        {
            Request = _request, Stages = _stages, Placements = _placements, LostNodes = [.. _lostNodes.Order(StringComparer.Ordinal)],
        };
        record.State = state;
        try
        {
            await record.WriteStateAsync();
        }
        catch (Orleans.Storage.InconsistentStateException)
        {
            // The store lost or changed the record (development storage lives on a silo that may have died):
            // take its version and write ours over it.
            await record.ReadStateAsync();
            record.State = state;
            await record.WriteStateAsync();
        }
    }

    /// <summary>Plans over the silos up (less those known lost) and loads a fresh set of stage grains.</summary>
    private async Task<DeployedStage[]> Place(bool firstPlacement)
    {
        var request = _request!;
        var up = (await nodes.ActiveNodesAsync())
            .Where(n => !_lostNodes.Contains(n.NodeName))
            .OrderBy(n => n.NodeName, StringComparer.Ordinal).ToArray();
        if (up.Length == 0) throw new InvalidOperationException("no silo is up to place stages on");
        if (firstPlacement && up.Length < request.Stages)
            throw new InvalidOperationException(
                $"{request.Stages} stages need {request.Stages} silos, but {up.Length} are up ({string.Join(", ", up.Select(n => n.NodeName))})");
        // After a loss, as many stages as silos survive, at most the number asked for.
        var silos = up.Take(request.Stages).Select(n => new SiloCapacity(n.NodeName, n.Capacity, n.MemoryBudgetBytes)).ToArray();
        var plan = DeploymentPlanner.Plan(Config.Layers, silos, _layerCosts, _bytesPerLayer, HeadCost());
        _maxCachedTokens = MaxCachedTokens(plan, up);

        // Each placement has keys of its own: after a re-plan a node may hold other layers, which is another grain.
        string prefix = $"{this.GetPrimaryKeyString()}/{_placements++}";
        double Cost(int first, int end) => Enumerable.Range(first, end - first).Sum(l => _layerCosts?[l] ?? 1.0);
        var stages = plan.Stages.Select(s => new DeployedStage(s.Index, s.Silo, s.FirstLayer, s.EndLayer,
            NodePinnedKey.Create($"{prefix}/stage-{s.Index}", s.Silo), Cost(s.FirstLayer, s.EndLayer) / Cost(0, Config.Layers))).ToArray();
        await Task.WhenAll(stages.Select(s => Stage(s).Load(new StageSetup(
            this.GetPrimaryKeyString(), s.Index, request.ModelPath, s.FirstLayer, s.EndLayer, IsLast: s.Index == stages.Length - 1,
            request.Storage, request.Wire, request.MaxMessageBytes,
            StageKeys: [.. stages.Select(t => t.GrainKey)], StageEnds: [.. stages.Select(t => t.EndLayer)],
            request.RouterPaths, request.StageAwareRouting, request.PruneNewest))));
        return stages;
    }

    /// <summary>
    /// The LM head's work per row over a layer's (their weights' sizes): the last stage computes it for every row a
    /// token is drawn after, which in a batch job's decode steps is every row.
    /// </summary>
    private double HeadCost() => (double)Config.VocabSize * Config.Dim / Config.ParametersPerLayer;

    /// <summary>
    /// The tokens the KV caches of all sequences admitted may hold: each stage's budget (the deployment's, or its
    /// silo's memory budget less the stage's weights) over its bytes per token, at the tightest stage.
    /// </summary>
    private long MaxCachedTokens(DeploymentPlan plan, FtpClusterNode[] nodes)
    {
        long bytesPerTokenPerLayer = (long)Config.KvDim * 2 * sizeof(float) + sizeof(int);
        long tightest = long.MaxValue;
        foreach (var stage in plan.Stages)
        {
            long budget = _request!.KvCacheBytesPerStage > 0 ? _request.KvCacheBytesPerStage
                : nodes.First(n => n.NodeName == stage.Silo).MemoryBudgetBytes - stage.LayerCount * _bytesPerLayer;
            tightest = Math.Min(tightest, Math.Max(0, budget) / (stage.LayerCount * bytesPerTokenPerLayer));
        }
        return tightest;
    }

    public async Task<GenerationReply> Generate(GenerationRequest request)
    {
        var sampling = new SamplingOptions { Temperature = request.Temperature, TopK = request.TopK, TopP = request.TopP, Seed = request.Seed };
        if (request.PromptIds.Length > Config.MaxSeqLen)
            throw new ArgumentException($"the prompt has {request.PromptIds.Length} tokens, more than the model's context of {Config.MaxSeqLen}");
        if (request.MaxTokens == 0 || request.PromptIds.Length == Config.MaxSeqLen)
            return new GenerationReply(request.PromptIds, request.PromptIds, "length", _stages);
        _lastUse = DateTimeOffset.UtcNow;
        var result = await Scheduler.Run(new SequenceSpec(request.PromptIds, request.MaxTokens, request.StopTokens.ToHashSet(), sampling, _request!.DefaultRouter),
            _unloading.Token);
        return new GenerationReply(result.PromptIds, [.. result.PromptIds, .. result.Generated], result.FinishReason, _stages);
    }

    /// <summary>
    /// Cancels the jobs that stopped collecting (their clients are gone), and unloads the deployment when nothing
    /// has used it for its idle time.
    /// </summary>
    private async Task LookForIdleWork(CancellationToken cancellationToken)
    {
        if (_jobs is not null)
            foreach (string job in _jobs.CancelIdle())
                logger.LogWarning("Deployment {Deployment}: job {Job} stopped collecting its results for {Timeout} s; its lines are cancelled",
                    this.GetPrimaryKeyString(), job, JobLines.IdleTimeout.TotalSeconds);
        if (_request is not { IdleUnloadSeconds: > 0 } request) return;
        bool busy = _scheduler is { Running: > 0 } or { Waiting: > 0 } || _jobs is { JobCount: > 0 };
        if (busy || DateTimeOffset.UtcNow - _lastUse < TimeSpan.FromSeconds(request.IdleUnloadSeconds)) return;
        logger.LogInformation("Deployment {Deployment}: unused for {Seconds} s; unloading it", this.GetPrimaryKeyString(), request.IdleUnloadSeconds);
        await Unload();
    }

    /// <summary>One of a job's lines, stopped by its job's cancellation or by the deployment's unloading.</summary>
    private async Task<CompletionLineResult> RunLine(CompletionLine line, CancellationToken job)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(job, _unloading.Token);
        try
        {
            return await Requests.Run(line, either.Token);
        }
        catch (OperationCanceledException) when (_unloading.IsCancellationRequested && !job.IsCancellationRequested)
        {
            return CompletionLineResult.Failed(line, "deployment_unloaded", $"deployment {this.GetPrimaryKeyString()} was unloaded while the line ran");
        }
    }

    public Task<int> SubmitLines(string job, CompletionLine[] lines, int maxConcurrent)
    {
        _ = Config; // refuses a deployment that was never deployed before queueing anything
        _lastUse = DateTimeOffset.UtcNow;
        return Task.FromResult(Jobs.Submit(job, lines, maxConcurrent));
    }

    public Task<CollectedLines> CollectLines(string job, TimeSpan maxWait)
    {
        _ = Config;
        _lastUse = DateTimeOffset.UtcNow;
        return Jobs.Collect(job, maxWait);
    }

    public void Dispose() => _unloading.Dispose();

    public async Task<DeploymentInfo?> Describe()
    {
        if (_request is null || _config is null) return null;
        return new DeploymentInfo(this.GetPrimaryKeyString(), _request, await Reports(), _scheduler?.Running ?? 0, _scheduler?.Waiting ?? 0,
            _jobs?.JobCount ?? 0, _lastUse);
    }

    public async Task Unload()
    {
        if (_request is null) return;
        string id = this.GetPrimaryKeyString();
        _unloading.Cancel();
        _jobs?.CancelAll();
        await Task.WhenAll(_stages.Select(async s =>
        {
            try
            {
                await Stage(s).Unload();
            }
            catch (Exception e) when (ClusterFailures.IsStageLoss(e))
            {
                // Its silo is gone, and its memory with it.
            }
        }));
        (_request, _config, _stages, _scheduler, _jobs, _requests) = (null, null, [], null, null, null);
        await record.ClearStateAsync();
        await GrainFactory.GetGrain<IDeploymentListGrain>(0).Remove(id);
        logger.LogInformation("Deployment {Deployment}: unloaded", id);
    }

    public Task CancelJob(string job)
    {
        Jobs.Cancel(job);
        return Task.CompletedTask;
    }

    /// <summary>One microbatch through the current stages: each step's rows, and a draw after the last row of each step that asks for one.</summary>
    private Task<StepResult> SendMicrobatch(PendingStep[] steps)
    {
        int rows = steps.Sum(s => s.Tokens.Length);
        var sequenceIds = new long[rows];
        var positions = new int[rows];
        var tokens = new int[rows];
        var samples = new List<SampleRequest>(steps.Length);
        int row = 0;
        for (int i = 0; i < steps.Length; i++)
        {
            var step = steps[i];
            for (int j = 0; j < step.Tokens.Length; j++, row++)
                (sequenceIds[row], positions[row], tokens[row]) = (step.SequenceId, step.FirstPosition + j, step.Tokens[j]);
            if (step.Sample is { } sample) samples.Add(sample with { Row = row - 1 });
        }
        return FirstStage().Forward(new StepRequest(Interlocked.Increment(ref _nextMicrobatchId),
            sequenceIds, positions, tokens, Packet: null, [.. samples], ReturnLogits: false, Router: steps[0].Router));
    }

    /// <summary>Rows per microbatch are capped by the deployment and by what fits one f32 packet under the message limit.</summary>
    private MicrobatchLimits MicrobatchLimits()
    {
        var request = _request!;
        int rowsThatFit = Math.Max(1, request.MaxMessageBytes / 2 / (Config.Dim * sizeof(float)));
        int inFlight = request.MicrobatchesInFlight > 0 ? request.MicrobatchesInFlight : Math.Max(1, _stages.Length);
        return new MicrobatchLimits(Math.Min(Math.Max(1, request.MaxMicrobatchRows), rowsThatFit), inFlight);
    }

    /// <summary>How the scheduler spends the deployment's room: its settings, and the KV-cache room its stages have.</summary>
    private SchedulerLimits SchedulerLimits() =>
        new(_request!.PrefillChunkTokens, _request.MaxSequences, _maxCachedTokens);

    public async Task<StepResult> Score(int[] ids)
    {
        _lastUse = DateTimeOffset.UtcNow;
        if (ids.Length == 0 || ids.Length > Config.MaxSeqLen)
            throw new ArgumentException($"scoring needs 1 to {Config.MaxSeqLen} tokens, got {ids.Length}");
        long sequence = Scheduler.NewSequenceId();
        int recoveries = 0;
        try
        {
            while (true)
            {
                int epoch = _epoch;
                try
                {
                    return await FirstStage().Forward(new StepRequest(
                        Interlocked.Increment(ref _nextMicrobatchId),
                        Enumerable.Repeat(sequence, ids.Length).ToArray(), Enumerable.Range(0, ids.Length).ToArray(), ids,
                        Packet: null, Samples: [], ReturnLogits: true, Router: _request!.DefaultRouter));
                }
                catch (Exception e) when (ClusterFailures.IsStageLoss(e) && ++recoveries <= MaxRecoveriesPerRequest)
                {
                    await Recover(epoch, e);
                }
            }
        }
        finally
        {
            await ReleaseEverywhere(sequence);
        }
    }

    /// <summary>
    /// After a step of <paramref name="failedEpoch"/> failed: find which stage silos are gone, re-plan over
    /// the rest and load new stages. Runs once per lost plan; every request that saw the failure awaits it.
    /// </summary>
    private Task Recover(int failedEpoch, Exception failure)
    {
        if (failedEpoch != _epoch) return Task.CompletedTask;
        return _recovery ??= RecoverOnce(failure);
    }

    private async Task RecoverOnce(Exception failure)
    {
        try
        {
            var started = DateTime.UtcNow;
            var previous = _stages;
            logger.LogWarning("Deployment {Deployment}: a stage failed ({Failure}); probing its silos", this.GetPrimaryKeyString(), failure.Message);
            while (true)
            {
                // A stage whose silo is gone takes its node out of the plan; one that lost its weights
                // on a live silo (see StageNotLoadedException) just gets a fresh grain in the new placement.
                _lostNodes.UnionWith(await ProbeLostNodes(previous));
                try
                {
                    // The new plan and its epoch take effect together, once every stage has loaded.
                    var stages = await Place(firstPlacement: false);
                    (_stages, _epoch) = (stages, _epoch + 1);
                    await SaveRecoveredDeployment();
                    logger.LogWarning("Deployment {Deployment}: re-planned without {Lost}: {Plan}", this.GetPrimaryKeyString(),
                        string.Join(", ", _lostNodes), string.Join(", ", stages.Select(s => $"{s.NodeName} [{s.FirstLayer}, {s.EndLayer})")));
                    break;
                }
                catch (Exception e) when (ClusterFailures.IsSiloLoss(e))
                {
                    if (DateTime.UtcNow - started > RecoveryDeadline)
                        throw new InvalidOperationException(
                            $"the stages could not be placed again within {RecoveryDeadline.TotalSeconds:F0} s of losing {string.Join(", ", _lostNodes)}: {e.Message}", e);
                    logger.LogInformation("Deployment {Deployment}: placing again after {Error}", this.GetPrimaryKeyString(), e.Message);
                    await Task.Delay(PlacementRetryDelay);
                }
            }
            foreach (var old in previous.Where(s => !_lostNodes.Contains(s.NodeName)))
                _ = Stage(old).Unload();
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException(
                $"silo{(_lostNodes.Count > 1 ? "s" : "")} {string.Join(", ", _lostNodes.Order(StringComparer.Ordinal))} left the cluster " +
                $"and the survivors cannot hold the model: {e.Message}", e);
        }
        finally
        {
            _recovery = null;
        }
    }

    /// <summary>The new plan works whether or not it could be stored; a failure to store it costs only a later re-deploy.</summary>
    private async Task SaveRecoveredDeployment()
    {
        try
        {
            await SaveDeployment();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            logger.LogWarning("Deployment {Deployment}: the new plan could not be stored ({Error}); a new coordinator activation would need it deployed again",
                this.GetPrimaryKeyString(), e.Message);
        }
    }

    /// <summary>
    /// The nodes among the stages' whose stage no longer answers. The stages themselves are the probes:
    /// they are active, so reaching them needs no new activation, whose directory entry could live on
    /// the very silo that is gone (until the cluster declares it dead, such registrations fail).
    /// </summary>
    private async Task<HashSet<string>> ProbeLostNodes(IEnumerable<DeployedStage> stages)
    {
        var probes = stages.Select(async s =>
        {
            try
            {
                await Stage(s).Report().WaitAsync(ProbeTimeout);
                return null;
            }
            catch (Exception e) when (ClusterFailures.IsSiloLoss(e))
            {
                return s.NodeName;
            }
            catch (StageNotLoadedException)
            {
                return null;
            }
        });
        return (await Task.WhenAll(probes)).OfType<string>().ToHashSet(StringComparer.Ordinal);
    }

    public Task<DeployedStage[]> Stages() => Task.FromResult(_stages);

    public async Task<StageReport[]> Reports() => await Task.WhenAll(_stages.Select(s => Stage(s).Report()));

    public Task<string> NodeName() => Task.FromResult(localNode.NodeName);

    private IStageGrain FirstStage() => _stages.Length > 0
        ? Stage(_stages[0])
        : throw new InvalidOperationException($"deployment {this.GetPrimaryKeyString()} has not been deployed");

    private IStageGrain Stage(DeployedStage stage) => GrainFactory.GetGrain<IStageGrain>(stage.GrainKey);

    /// <summary>Frees a sequence's caches; a stage that is gone has nothing left to free.</summary>
    private async Task ReleaseEverywhere(long sequence)
    {
        foreach (var stage in _stages)
        {
            try
            {
                await Stage(stage).Release([sequence]);
            }
            catch (Exception e) when (ClusterFailures.IsSiloLoss(e))
            {
            }
        }
    }
}
