using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Telemetry;
using FtpCluster.Grains.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Configuration;

namespace FtpCluster.Grains.Pipeline;

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
    [Id(4)] public DateTimeOffset DeployedAt { get; set; }

    /// <summary>The token the stages of <see cref="Stages"/> hold: the coordinator that resumes them needs it to call them.</summary>
    [Id(5)] public DeploymentToken? StageToken { get; set; }

    /// <summary>The silo incarnations kept out of plans (<see cref="LostSilo"/>). Field 3 held node names once: a node is excluded by incarnation now.</summary>
    [Id(6)] public LostSilo[] LostSilos { get; set; } = [];
}

/// <summary>
/// One deployment (key: its id): its placement (<see cref="DeploymentPlacement"/>), the sequences it runs
/// (<see cref="SequenceScheduler"/>), the request bodies it serves (<see cref="CompletionRequests"/>), the lines jobs
/// hand it (<see cref="JobLines"/>), and its life: deploy, resume after its silo died, unload.
/// </summary>
/// <remarks>
/// Reentrant, so many requests are in flight at once: each awaits its own steps while the stages work
/// on the others' (a stage answers only once the stages after it have).
/// When a step fails because a silo is gone, the placement re-plans the layers over the silos still
/// up (once, however many requests saw the failure), and each request replays its tokens so far into
/// the new stages' empty caches before going on. Sampling depends only on (seed, draw), and an f32
/// wire is exact, so the output is the one a fault-free run gives.
/// </remarks>
[Reentrant]
[CollectionAgeLimit(AlwaysActive = true)] // the deployment's plan lives here (and in storage)
internal sealed class CoordinatorGrain(
    FtpClusterNodeDirectory nodes, FtpClusterSiloOptions localNode, ModelRoots roots, IOptions<SiloMessagingOptions> messaging, ILogger<CoordinatorGrain> logger,
    [PersistentState("deployment", FtpClusterSiloBuilderExtensions.DeploymentStorage)] IPersistentState<DeploymentRecord> record)
    : Grain, ICoordinatorGrain, IDisposable
{
    private DeploymentRequest? _request;
    private DeploymentModel? _model;
    private DeploymentPlacement? _placement;

    /// <summary>A deploy under way (the grain is reentrant): a second one with the same settings awaits it, one with others is refused.</summary>
    private (DeploymentRequest Request, Task<DeployedStage[]> Stages)? _deploying;
    private long _nextMicrobatchId;
    private DateTimeOffset _deployedAt;

    /// <summary>Placements made before the last unload: a deployment deployed again gets stage grains of its own.</summary>
    private int _placementsUnloaded;
    private SequenceScheduler? _scheduler;
    private JobLines? _jobs;
    private OnlineCompletions? _online;
    private CompletionRequests? _requests;

    /// <summary>The deployment's queue depths as the gauges read them (on the exporter's thread, never from this grain's state).</summary>
    private QueueGauge? _queue;
    private IDisposable? _queueTracking;

    /// <summary>Cancelled when the deployment is unloaded: everything that runs on it stops within a step.</summary>
    private CancellationTokenSource _unloading = new();

    /// <summary>When a request, a job or a deploy last touched the deployment (for <see cref="DeploymentRequest.IdleUnloadSeconds"/>).</summary>
    private DateTimeOffset _lastUse = DateTimeOffset.UtcNow;

    private string Id => this.GetPrimaryKeyString();

    private DeploymentPlacement Placement => _placement ?? throw new InvalidOperationException($"deployment {Id} has not been deployed");

    private ModelConfig Config => (_model ?? throw new InvalidOperationException($"deployment {Id} has not been deployed")).Config;

    private SequenceScheduler Scheduler => _scheduler ??= new SequenceScheduler(
        new MicrobatchQueue(SendMicrobatch, () => Placement.Epoch, MicrobatchLimits), () => Placement.Epoch,
        step => Placement.WithRecovery(step), ReserveEverywhere, ReleaseEverywhere, SchedulerLimits, Config.MaxSeqLen,
        new SchedulerTelemetry(Id, CompletionRequests.ServedModelOf(_request!, Config, []).Name, Queue, FtpClusterMetrics.Shared));

    private QueueGauge Queue
    {
        get
        {
            if (_queue is null)
            {
                _queue = new QueueGauge(Id);
                _queueTracking = FtpClusterMetrics.Shared.Track(_queue);
            }
            return _queue;
        }
    }

    /// <summary>After anything that starts, ends or forgets an online request.</summary>
    private void PublishOnline() => Queue.PublishOnline(_online?.Count ?? 0);

    private JobLines Jobs => _jobs ??= new JobLines(RunLine, TimeProvider.System);

    private OnlineCompletions Online => _online ??= new OnlineCompletions(TimeProvider.System);

    private CompletionRequests Requests => _requests ??= CompletionRequests.Open(_request!, Config, Scheduler);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // A job whose client stopped collecting must not keep the stages busy for nobody.
        this.RegisterGrainTimer(LookForIdleWork, new GrainTimerCreationOptions(JobLines.IdleTimeout / 4, JobLines.IdleTimeout / 4) { Interleave = true });
        if (record.State.Request is not { } request) return;
        if (record.State.StageToken is not { } token)
        {
            logger.LogWarning("Deployment {Deployment}: the stored deployment of {Model} has no stage token; it must be deployed again", Id, request.ModelPath);
            return;
        }
        try
        {
            CheckModelRoots(request);
            _model = ReadModel(request);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or PathOutsideModelRootsException)
        {
            logger.LogWarning("Deployment {Deployment}: the stored deployment of {Model} cannot be resumed ({Error}); it must be deployed again",
                Id, request.ModelPath, e.Message);
            return;
        }
        _request = request;
        _deployedAt = record.State.DeployedAt;
        _placement = NewPlacement(request, _model);
        _placement.Resume(record.State.Stages, record.State.Placements, record.State.LostSilos, token);
        // The stages that outlived the previous coordinator still hold the caches of its sequences, which nobody will
        // release now. (This activation's sequence ids start at a random point too, so a step of the old one still on
        // its way through the stages cannot meet a new sequence's cache.)
        await _placement.OnEveryStage((stage, stageToken) => stage.ReleaseAll(stageToken));
        logger.LogInformation("Deployment {Deployment}: resumed on {Node} with its stored plan: {Plan}", Id,
            localNode.NodeName, string.Join(", ", _placement.Stages.Select(s => $"{s.NodeName} [{s.FirstLayer}, {s.EndLayer})")));
        await base.OnActivateAsync(cancellationToken);
    }

    public async Task<DeployedStage[]> Deploy(DeploymentRequest request)
    {
        CheckRequest(request);
        // Before any file is opened, even to compare with what is live.
        CheckModelRoots(request);
        if (_deploying is { } deploying)
        {
            RefuseOtherSettings(deploying.Request, request, "is being deployed");
            return await deploying.Stages;
        }
        if (_request is not null && _placement is not null)
        {
            RefuseOtherSettings(_request, request, "is live");
            _lastUse = DateTimeOffset.UtcNow;
            return _placement.Stages;
        }
        var stages = DeployNew(request);
        _deploying = (request, stages);
        try
        {
            return await stages;
        }
        finally
        {
            _deploying = null;
        }
    }

    /// <exception cref="InvalidOperationException">The deployment asked for differs from <paramref name="live"/>; the message names each setting.</exception>
    private void RefuseOtherSettings(DeploymentRequest live, DeploymentRequest asked, string state)
    {
        if (DeploymentSettings.Differences(live, asked) is { Length: > 0 } differences)
            throw new InvalidOperationException(
                $"deployment {Id} {state} with other settings ({string.Join("; ", differences)}): unload it first (cluster unload {Id}) or deploy under another id");
    }

    /// <summary>Every file the deployment names (model, tokenizer, routers) is under this silo's model roots.</summary>
    /// <exception cref="PathOutsideModelRootsException">One is not; nothing was opened.</exception>
    private void CheckModelRoots(DeploymentRequest request)
    {
        roots.Check(request.ModelPath, "model");
        if (request.Tokenizer is { } tokenizer) roots.Check(tokenizer, "tokenizer");
        foreach (string router in request.RouterPaths) roots.Check(router, "router artifact");
    }

    /// <summary>The request's own settings, before anything is looked at.</summary>
    private void CheckRequest(DeploymentRequest request)
    {
        if (request.Stages < 1) throw new ArgumentException($"a deployment needs at least one stage, got {request.Stages}");
        WireEncodings.Parse(request.Wire);
        // Orleans closes a connection that carries a message over its limit: packets must stay under it.
        int orleansLimit = messaging.Value.MaxMessageBodySize;
        int packetLimit = orleansLimit - MessageLimits.EnvelopeBytes;
        if (request.MaxMessageBytes < 1 || request.MaxMessageBytes > packetLimit)
            throw new ArgumentException($"a deployment's message limit must be 1 to {packetLimit} bytes (Orleans' message body limit of " +
                $"{orleansLimit} less {MessageLimits.EnvelopeBytes} for the rest of a step's message), got {request.MaxMessageBytes}");
    }

    private async Task<DeployedStage[]> DeployNew(DeploymentRequest request)
    {
        var model = ReadModel(request);
        var placement = NewPlacement(request, model);
        await placement.PlaceFirst(_placement?.Placements ?? Math.Max(_placementsUnloaded, record.State.Placements));
        (_request, _model, _placement, _deployedAt) = (request, model, placement, DateTimeOffset.UtcNow);
        if (_unloading.IsCancellationRequested)
        {
            // Deployed again after an unload: what runs from now on must not see the old cancellation.
            _unloading.Dispose();
            _unloading = new CancellationTokenSource();
        }
        await SaveDeployment();
        await GrainFactory.GetGrain<IDeploymentListGrain>(0).Add(Id, CompletionRequests.ServedModelOf(request, model.Config, []).Name);
        _lastUse = DateTimeOffset.UtcNow;
        return placement.Stages;
    }

    private DeploymentPlacement NewPlacement(DeploymentRequest request, DeploymentModel model) =>
        new(Id, request, model, nodes, GrainFactory, logger, SaveRecoveredDeployment);

    /// <summary>The model's shape and costs: its config, bytes per layer, and with a router each layer's share of the tokens.</summary>
    private static DeploymentModel ReadModel(DeploymentRequest request)
    {
        try
        {
            using var checkpoint = Checkpoint.Open(request.ModelPath);
            // A pruned block costs in proportion to the tokens it computes (block 0 plans the one pass and computes all).
            // Every artifact must be this model's; the plan costs layers by the first (what requests that name none use).
            var artifacts = request.RouterPaths.Select(r => RouterArtifact.Load(r, checkpoint)).ToArray();
            double[]? layerCosts = artifacts.Length == 0 ? null
                : [.. artifacts[0].Schedule.PerBlock.Select((s, b) => b == 0 ? 1.0 : 1.0 - s)];
            return new DeploymentModel(checkpoint.Config, ModelInfo.Describe(checkpoint).BytesPerLayer, layerCosts);
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
            Request = _request, Stages = Placement.Stages, Placements = Placement.Placements, LostSilos = [.. Placement.LostSilos],
            DeployedAt = _deployedAt, StageToken = Placement.Token,
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
                Id, e.Message);
        }
    }

    public async Task<GenerationReply> Generate(GenerationRequest request)
    {
        var sampling = new SamplingOptions { Temperature = request.Temperature, TopK = request.TopK, TopP = request.TopP, Seed = request.Seed };
        if (request.PromptIds.Length > Config.MaxSeqLen)
            throw new ArgumentException($"the prompt has {request.PromptIds.Length} tokens, more than the model's context of {Config.MaxSeqLen}");
        if (request.MaxTokens == 0 || request.PromptIds.Length == Config.MaxSeqLen)
            return new GenerationReply(request.PromptIds, request.PromptIds, "length", Placement.Stages);
        _lastUse = DateTimeOffset.UtcNow;
        var result = await Scheduler.Run(new SequenceSpec(request.PromptIds, request.MaxTokens, request.StopTokens.ToHashSet(), sampling, _request!.DefaultRouter),
            _unloading.Token);
        return new GenerationReply(result.PromptIds, [.. result.PromptIds, .. result.Generated], result.FinishReason, Placement.Stages);
    }

    public async Task<StepResult> Score(int[] ids)
    {
        _lastUse = DateTimeOffset.UtcNow;
        if (ids.Length == 0 || ids.Length > Config.MaxSeqLen)
            throw new ArgumentException($"scoring needs 1 to {Config.MaxSeqLen} tokens, got {ids.Length}");
        long sequence = Scheduler.NewSequenceId();
        try
        {
            return await Placement.WithRecovery(_ => Placement.FirstStage().Forward(Placement.Token, new StepRequest(
                Interlocked.Increment(ref _nextMicrobatchId),
                Enumerable.Repeat(sequence, ids.Length).ToArray(), Enumerable.Range(0, ids.Length).ToArray(), ids,
                Packet: null, Samples: [], ReturnLogits: true, Router: _request!.DefaultRouter)));
        }
        finally
        {
            await ReleaseEverywhere(sequence);
        }
    }

    /// <summary>
    /// Cancels the jobs that stopped collecting (their clients are gone), plans on lost silos again once they answer,
    /// and unloads the deployment when nothing has used it for its idle time.
    /// </summary>
    private async Task LookForIdleWork(CancellationToken cancellationToken)
    {
        if (_jobs is not null)
            foreach (string job in _jobs.CancelIdle())
                logger.LogWarning("Deployment {Deployment}: job {Job} stopped collecting its results for {Timeout} s; its lines are cancelled",
                    Id, job, JobLines.IdleTimeout.TotalSeconds);
        if (_online is not null)
        {
            foreach (string online in _online.CancelIdle())
                logger.LogWarning("Deployment {Deployment}: online request {Request} was not polled for {Timeout} s; it is cancelled",
                    Id, online, OnlineCompletions.IdleTimeout.TotalSeconds);
            PublishOnline();
        }
        if (_placement is { } placement) await placement.ReadmitAnswering();
        if (_request is not { IdleUnloadSeconds: > 0 } request) return;
        bool busy = _scheduler is { Running: > 0 } or { Waiting: > 0 } || _jobs is { JobCount: > 0 } || _online is { Count: > 0 };
        if (busy || DateTimeOffset.UtcNow - _lastUse < TimeSpan.FromSeconds(request.IdleUnloadSeconds)) return;
        logger.LogInformation("Deployment {Deployment}: unused for {Seconds} s; unloading it", Id, request.IdleUnloadSeconds);
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
            return CompletionLineResult.Failed(line, "deployment_unloaded", $"deployment {Id} was unloaded while the line ran");
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

    public Task<CompletionRefusal?> StartCompletion(CompletionLine request, int maxWaiting)
    {
        _ = Config;
        _lastUse = DateTimeOffset.UtcNow;
        int waiting = Scheduler.Waiting;
        if (waiting >= maxWaiting || Online.Count >= OnlineCompletions.MaxRequests)
            return Task.FromResult<CompletionRefusal?>(new CompletionRefusal(CompletionRefusal.OverloadedCode, null,
                $"deployment {Id} is at capacity ({Online.Count} online requests, {waiting} sequences waiting for room): try again shortly"));
        PreparedRequest prepared;
        try
        {
            prepared = Requests.Prepare(request);
        }
        catch (RequestException e)
        {
            return Task.FromResult<CompletionRefusal?>(new CompletionRefusal(e.Code, e.Param, e.Message));
        }
        var requests = Requests;
        var unloading = _unloading.Token;
        string deployment = Id;
        Online.Start(request.Key, prepared.Stop, requests.NewAnswerText() ?? (_ => ""), async (generated, cancellation) =>
        {
            // Started in here, not in this call: the span lasts as long as the request, and this call ends at once.
            using var span = PipelineSpans.StartRequest(FtpClusterTelemetry.Spans.OnlineRequest, request);
            span?.SetTag(FtpClusterTelemetry.Attributes.Deployment, deployment);
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellation, unloading);
            try
            {
                var answer = await requests.Generate(request, prepared, generated, either.Token);
                PipelineSpans.Finish(span, answer.Result);
                return answer;
            }
            catch (Exception e)
            {
                span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, e.Message);
                throw;
            }
        }, e => e switch
        {
            OperationCanceledException when unloading.IsCancellationRequested =>
                CompletionLineResult.Failed(request, "deployment_unloaded", $"deployment {Id} was unloaded while the request ran"),
            OperationCanceledException => CompletionLineResult.Failed(request, "cancelled", "the request was cancelled"),
            _ => CompletionLineResult.Failed(request, "server_error", e.Message),
        });
        PublishOnline();
        return Task.FromResult<CompletionRefusal?>(null);
    }

    public async Task<CompletionProgress> PollCompletion(string requestId, TimeSpan maxWait)
    {
        _lastUse = DateTimeOffset.UtcNow;
        var progress = await (_online?.Poll(requestId, maxWait) ?? Task.FromResult<CompletionProgress?>(null));
        PublishOnline();
        return progress ?? new CompletionProgress("", Finished: true, new CompletionLineResult(requestId, 0, null, "request_lost",
                $"deployment {Id} does not know request {requestId}: it was cancelled, or its coordinator was restarted after its silo was lost"));
    }

    public Task CancelCompletion(string requestId)
    {
        _online?.Cancel(requestId);
        PublishOnline();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _unloading.Dispose();
        _queueTracking?.Dispose();
    }

    public async Task<DeploymentInfo?> Describe()
    {
        if (_request is null || _placement is null) return null;
        return new DeploymentInfo(Id, _request, await Reports(), _scheduler?.Running ?? 0, _scheduler?.Waiting ?? 0,
            _jobs?.JobCount ?? 0, _lastUse, _deployedAt);
    }

    public async Task Unload()
    {
        if (_request is null || _placement is not { } placement) return;
        string id = Id;
        _unloading.Cancel();
        _jobs?.CancelAll();
        _online?.CancelAll();
        // Gone at once, before the stages are: a call that comes in meanwhile finds no deployment.
        _placementsUnloaded = placement.Placements;
        (_request, _model, _placement, _scheduler, _jobs, _online, _requests) = (null, null, null, null, null, null, null);
        Queue.PublishWaiting(0);
        PublishOnline();
        // A stage whose silo is gone took its memory with it.
        await placement.OnEveryStage((stage, token) => stage.Unload(token));
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
    private async Task<StepResult> SendMicrobatch(PendingStep[] steps)
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
        long microbatch = Interlocked.Increment(ref _nextMicrobatchId);
        FtpClusterMetrics.Shared.RecordMicrobatch(Id, rows);
        using var span = PipelineSpans.StartMicrobatch(Id, microbatch, steps, rows);
        return await Placement.FirstStage().Forward(Placement.Token, new StepRequest(microbatch,
            sequenceIds, positions, tokens, Packet: null, [.. samples], ReturnLogits: false, Router: steps[0].Router));
    }

    /// <summary>Rows per microbatch are capped by the deployment and by what fits one f32 packet under the message limit.</summary>
    private MicrobatchLimits MicrobatchLimits()
    {
        var request = _request!;
        int rowsThatFit = Math.Max(1, request.MaxMessageBytes / 2 / (Config.Dim * sizeof(float)));
        int inFlight = request.MicrobatchesInFlight > 0 ? request.MicrobatchesInFlight : Math.Max(1, Placement.Stages.Length);
        return new MicrobatchLimits(Math.Min(Math.Max(1, request.MaxMicrobatchRows), rowsThatFit), inFlight);
    }

    /// <summary>How the scheduler spends the deployment's room: its settings, and the KV-cache room its stages have.</summary>
    private SchedulerLimits SchedulerLimits() =>
        new(_request!.PrefillChunkTokens, _request.MaxSequences, Placement.MaxCacheRows);

    public Task<DeployedStage[]> Stages() => Task.FromResult(_placement?.Stages ?? []);

    public async Task<StageReport[]> Reports() =>
        _placement is { } placement ? await Task.WhenAll(placement.Stages.Select(s => placement.Stage(s).Report(placement.Token))) : [];

    public Task<string> NodeName() => Task.FromResult(localNode.NodeName);

    /// <summary>
    /// Makes a sequence's caches on every stage ahead of its first step, with room for its whole length. A stage that is
    /// gone is left to the step, which mends the plan; the new stages' caches grow as the sequence's replay fills them.
    /// </summary>
    private Task ReserveEverywhere(long sequence, int length) =>
        Placement.OnEveryStage((stage, token) => stage.Reserve(token, [sequence], [length]));

    /// <summary>Frees a sequence's caches; a stage that is gone (or unloaded, with the deployment) has nothing left to free.</summary>
    private Task ReleaseEverywhere(long sequence) => _placement?.OnEveryStage((stage, token) => stage.Release(token, [sequence])) ?? Task.CompletedTask;
}
