using System.Diagnostics;
using System.Runtime.InteropServices;
using FtpCluster.Compute.Ftp;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Grains.Cluster;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Placement;
using FtpCluster.Grains.Telemetry;
using FtpCluster.Grains.Wire;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Placement;

namespace FtpCluster.Grains.Pipeline;

/// <remarks>
/// Reentrant: while a stage awaits the stages after it, it computes the next microbatch, so microbatches
/// in flight keep every stage busy and a stage never blocks on a later one. The compute itself runs on
/// the silo's <see cref="ComputeThread"/>, one piece of work at a time in the order handed in, so the
/// grain's turns only move messages and never overlap a stage's use of its weights and caches.
/// </remarks>
[NodePinnedPlacement, Immovable, Reentrant]
[CollectionAgeLimit(AlwaysActive = true)] // its weights and caches are the deployment: never collected for idleness
internal sealed class StageGrain(FtpClusterSiloOptions options, FtpClusterSiloDevice device, ModelRoots roots, LoadedStages loaded, ILogger<StageGrain> logger)
    : Grain, IStageGrain
{
    private readonly WireTraffic _traffic = new();
    private DepositQueue? _deposits;
    private Task<StageReport>? _loading;
    private StageSetup? _setup;
    private StageExecutor? _executor;
    private PlanningStage[] _planners = [];
    private WireEncoding _wire;
    private long _microbatches;
    private long _rows;
    private double _computeSeconds;
    private long _peakKvCacheBytes;
    private StageGauge? _gauge;
    private IDisposable? _gaugeTracking;

    private StageExecutor Executor => _executor ?? throw new StageNotLoadedException(this.GetPrimaryKeyString());

    private DepositQueue Deposits => _deposits ??= new DepositQueue(this.GetPrimaryKeyString(), options.StageLimits);

    public Task<StageReport> Load(StageSetup setup)
    {
        if (_loading is not null)
        {
            // Another deployment's setup (or another placement's token) must not take over a live stage, nor share it.
            if (_setup != setup)
                throw new InvalidOperationException($"stage {this.GetPrimaryKeyString()} is already loaded with another setup; a stage is loaded once");
            return _loading;
        }
        if (setup.Token?.Value is not { Length: DeploymentToken.Bytes })
            throw new ArgumentException($"stage {this.GetPrimaryKeyString()}: a setup needs a deployment token of {DeploymentToken.Bytes} bytes");
        // Before anything is opened: a path outside the roots is never read, not even to fail.
        roots.Check(setup.ModelPath, "model");
        if (setup.Index == 0)
            foreach (string router in setup.Routers ?? []) roots.Check(router, "router artifact");
        _setup = setup;
        return _loading = LoadOnce(setup);
    }

    /// <summary>The stage's setup, once the call's token is its placement's.</summary>
    /// <exception cref="StageNotLoadedException">The stage holds no setup (never loaded, or its activation was lost).</exception>
    /// <exception cref="StageAccessDeniedException">The call carries no token, or another one.</exception>
    private StageSetup Authorize(DeploymentToken? token, string call)
    {
        var setup = _setup ?? throw new StageNotLoadedException(this.GetPrimaryKeyString());
        if (token is null)
            throw new StageAccessDeniedException(
                $"stage {this.GetPrimaryKeyString()} refused {call} without a deployment token: only its deployment's coordinator and stages may call it");
        if (token != setup.Token)
            throw new StageAccessDeniedException(
                $"stage {this.GetPrimaryKeyString()} refused {call} with a token that is not its deployment's: only its deployment's coordinator and stages may call it");
        return setup;
    }

    private async Task<StageReport> LoadOnce(StageSetup setup)
    {
        var storage = setup.Storage is null ? (TensorDType?)null : TensorDTypeExtensions.Parse(setup.Storage);
        var slice = new SliceSpec(setup.FirstLayer, setup.EndLayer, Embedding: setup.Index == 0, Head: setup.IsLast);
        _wire = WireEncodings.Parse(setup.Wire);
        try
        {
            _executor = await device.Run(() => new StageExecutor(TransformerStage.Load(setup.ModelPath, device.Device, slice, storage)));
            loaded.Add(new LoadedStage(this.GetPrimaryKeyString(), setup.DeploymentId, setup.Index, _executor.Stage.Slice.ResidentBytes));
            _gauge = new StageGauge(setup.DeploymentId, setup.Index);
            _gaugeTracking ??= FtpClusterMetrics.Shared.Track(_gauge);
            if (setup.Index == 0)
                _planners = [.. (setup.Routers ?? []).Select(router => PlanningStageFor(setup, router, _executor))];
        }
        catch (Exception e)
        {
            (_loading, _setup) = (null, null); // nothing was loaded: a later Load may try again
            // Compute has no Orleans codecs: carry the message (file and tensor) alone, in an exception that has one.
            if (e is ModelFormatException) throw new InvalidOperationException(e.Message);
            throw;
        }
        logger.LogInformation("Stage {Stage} on {Node}: layers [{First}, {End}) of {Model}, {Bytes:N0} weight bytes",
            setup.Index, options.NodeName, setup.FirstLayer, setup.EndLayer, setup.ModelPath, _executor.Stage.Slice.ResidentBytes);
        return await Report(setup);
    }

    public async Task<StepResult> Forward(DeploymentToken token, StepRequest request)
    {
        var setup = Authorize(token, "a step");
        var executor = Executor;
        var gauge = _gauge!;
        var deposited = Deposits.Take(request.MicrobatchId);
        // The stages after this one run inside its span: a trace shows the pipeline as nested calls, stage by stage.
        using var span = StartForwardSpan(setup, request);
        var (output, seconds, kvCacheBytes) = await device.Run(() =>
        {
            long started = Stopwatch.GetTimestamp();
            var computed = Compute(executor, setup, request, deposited);
            double elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
            long held = executor.KvCacheBytes;
            gauge.Publish(held);
            return (computed, elapsed, held);
        });
        _peakKvCacheBytes = Math.Max(_peakKvCacheBytes, kvCacheBytes);
        _microbatches++;
        _rows += output.Rows;
        _computeSeconds += seconds;
        FtpClusterMetrics.Shared.RecordStageCompute(setup.DeploymentId, setup.Index, seconds, output.Rows);
        span?.SetTag(FtpClusterTelemetry.Attributes.Rows, output.Rows);
        if (output.Result is { } result) return result with { Usage = SequenceUsage.Merge(result.Usage ?? [], output.Usage) };

        span?.SetTag(FtpClusterTelemetry.Attributes.BytesSent, output.Next!.LongLength + output.Deposits.Sum(d => (long)d.Packet.Length));
        // Rows for stages past the next one first: the next stage's call must find them there.
        await Task.WhenAll(output.Deposits.Select(d =>
        {
            CountSent(setup, d.Target, d.Packet.Length);
            return Stage(d.Target).Deposit(setup.Token, d.Packet);
        }));
        CountSent(setup, setup.Index + 1, output.Next!.Length);
        var downstream = await Stage(setup.Index + 1).Forward(setup.Token, request with { SequenceIds = null, Positions = null, Tokens = null, Packet = output.Next });
        return downstream with { Usage = SequenceUsage.Merge(downstream.Usage ?? [], output.Usage) };
    }

    private static Activity? StartForwardSpan(StageSetup setup, StepRequest request)
    {
        var span = FtpClusterTelemetry.Source.StartActivity(FtpClusterTelemetry.Spans.StageForward);
        if (span is null) return null;
        span.SetTag(FtpClusterTelemetry.Attributes.Deployment, setup.DeploymentId);
        span.SetTag(FtpClusterTelemetry.Attributes.Stage, setup.Index);
        span.SetTag(FtpClusterTelemetry.Attributes.Layers, $"{setup.FirstLayer}-{setup.EndLayer}");
        span.SetTag(FtpClusterTelemetry.Attributes.Microbatch, request.MicrobatchId);
        return span;
    }

    /// <summary>A packet this stage sends on: in the boundary counts the stage reports, and in the metrics.</summary>
    private void CountSent(StageSetup setup, int target, int bytes)
    {
        _traffic.Record(setup.Index, target, bytes);
        FtpClusterMetrics.Shared.RecordWireBytes(setup.DeploymentId, setup.Index, target, _wire, bytes);
    }

    public Task Deposit(DeploymentToken token, byte[] packet)
    {
        var setup = Authorize(token, "a deposit");
        var header = ActivationCodec.ReadHeader(packet);
        if (header.TargetStage != setup.Index || header.DeploymentId != setup.DeploymentId)
            throw new ArgumentException(
                $"a packet for stage {header.TargetStage} of {header.DeploymentId} was deposited at stage {setup.Index} of {setup.DeploymentId}");
        Deposits.Add(header.MicrobatchId, packet);
        return Task.CompletedTask;
    }

    private IStageGrain Stage(int index) => GrainFactory.GetGrain<IStageGrain>(_setup!.StageKeys[index]);

    /// <summary>
    /// What a stage's compute hands on: the last stage's result, or the packet for the next stage and those for
    /// later ones; and what this stage spent on each sequence.
    /// </summary>
    private sealed record StageOutput(int Rows, StepResult? Result, byte[]? Next, (int Target, byte[] Packet)[] Deposits, SequenceUsage[] Usage);

    /// <summary>
    /// On the compute thread: gathers the microbatch's rows, runs this stage's blocks over them, and cuts
    /// what goes on from here by where each row goes next.
    /// </summary>
    private StageOutput Compute(StageExecutor executor, StageSetup setup, StepRequest request, List<byte[]> deposited)
    {
        var (rows, hidden, plan) = setup.Index == 0 ? Embed(executor.Stage, request) : Gather(request, deposited, executor.Stage.Config.Dim);
        long[] sequenceIds = [.. rows.Select(r => r.SequenceId)];
        SequenceAdmission.Check(this.GetPrimaryKeyString(), sequenceIds, Holdings(executor, setup), options.StageLimits, KvBudgetBytes);
        int[] positions = [.. rows.Select(r => r.Position)];
        bool routed = setup.Index == 0 && request.Router >= 0;
        if (routed)
            plan = WirePlan(Planner(request.Router).Forward(sequenceIds, positions, hidden));
        else if (rows.Length > 0 && !setup.IsLast)
            executor.Forward(sequenceIds, positions, hidden, plan?.BlockRows(setup.FirstLayer, setup.EndLayer));
        // The first stage sees every row and the whole plan: it counts every block's work for each sequence, and in all.
        var usage = new Dictionary<long, SequenceUsage>();
        if (setup.Index == 0)
        {
            var computedPerBlock = new int[executor.Stage.Config.Layers];
            usage = BlockUsage(rows, plan, computedPerBlock);
            FtpClusterMetrics.Shared.RecordBlockTokens(setup.DeploymentId, computedPerBlock, rows.Length);
        }
        if (setup.IsLast)
        {
            // The blocks run here through to the logits, which are all that comes back from the device; a routed
            // microbatch has been through them already, in the planner.
            var computeRows = plan?.BlockRows(setup.FirstLayer, setup.EndLayer);
            LogitsOf logitsOf = routed
                ? (wanted, onLogits) => executor.Stage.Logits(hidden, wanted, onLogits)
                : (wanted, onLogits) => executor.ForwardToLogits(sequenceIds, positions, hidden, computeRows, wanted, onLogits);
            return new StageOutput(rows.Length, Finish(executor.Stage, setup, request, rows, logitsOf), null, [], [.. usage.Values]);
        }

        int dim = executor.Stage.Config.Dim;
        var byTarget = Enumerable.Range(0, rows.Length)
            .GroupBy(i => RowRoutes.Next(setup.Index, i, rows[i], plan, setup.StageEnds))
            .Where(g => g.Key != RowRoutes.Nowhere)
            .ToDictionary(g => g.Key, g => g.ToArray());
        byte[] Packet(int target, int[] selected)
        {
            var values = new float[selected.Length * dim];
            for (int i = 0; i < selected.Length; i++)
                hidden.AsSpan(selected[i] * dim, dim).CopyTo(values.AsSpan(i * dim, dim));
            var packet = new ActivationPacket(setup.DeploymentId, request.MicrobatchId, setup.Index, target, dim,
                [.. selected.Select(i => rows[i])], values, plan?.SelectRows(selected));
            var encoded = ActivationCodec.Encode(packet, _wire, setup.MaxMessageBytes);
            AddWireBytes(usage, [.. selected.Select(i => rows[i].SequenceId)], encoded.Length);
            return encoded;
        }
        // The next stage always gets a packet, if an empty one: the call that carries it is what moves the microbatch on.
        var next = Packet(setup.Index + 1, byTarget.GetValueOrDefault(setup.Index + 1, []));
        var deposits = byTarget.Where(t => t.Key > setup.Index + 1).OrderBy(t => t.Key).Select(t => (t.Key, Packet(t.Key, t.Value))).ToArray();
        return new StageOutput(rows.Length, null, next, deposits, [.. usage.Values]);
    }

    /// <summary>
    /// Per sequence, the blocks that compute its rows and those that skip them, over all of the model's blocks; and per
    /// block (one entry of <paramref name="computedPerBlock"/> each), the rows it computes.
    /// </summary>
    private static Dictionary<long, SequenceUsage> BlockUsage(PacketRow[] rows, RowBlockPlan? plan, int[] computedPerBlock)
    {
        int layers = computedPerBlock.Length;
        var usage = new Dictionary<long, SequenceUsage>();
        if (plan is null) Array.Fill(computedPerBlock, rows.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            int computed = layers;
            if (plan is not null)
            {
                computed = 0;
                for (int b = 0; b < layers; b++)
                    if (plan.Computes(i, b))
                    {
                        computed++;
                        computedPerBlock[b]++;
                    }
            }
            long id = rows[i].SequenceId;
            var row = new SequenceUsage(id, computed, layers - computed, 0);
            usage[id] = usage.TryGetValue(id, out var sum) ? sum.Plus(row) : row;
        }
        return usage;
    }

    /// <summary>A packet's bytes shared among its rows' sequences by their rows (an empty packet's header is nobody's).</summary>
    private static void AddWireBytes(Dictionary<long, SequenceUsage> usage, long[] rowSequences, int packetBytes)
    {
        if (rowSequences.Length == 0) return;
        foreach (var group in rowSequences.GroupBy(id => id))
        {
            long bytes = (long)packetBytes * group.Count() / rowSequences.Length;
            var part = new SequenceUsage(group.Key, 0, 0, bytes);
            usage[group.Key] = usage.TryGetValue(group.Key, out var sum) ? sum.Plus(part) : part;
        }
    }

    /// <summary>The stage's KV-cache bound: its own limit, else the silo's memory budget.</summary>
    private long KvBudgetBytes => options.StageLimits.MaxKvCacheBytes > 0 ? options.StageLimits.MaxKvCacheBytes : options.MemoryBudgetBytes;

    /// <summary>On the compute thread (which alone changes the caches): what the stage holds now.</summary>
    private static StageHoldings Holdings(StageExecutor executor, StageSetup setup)
    {
        // A row of room takes a key, a value and a position in every block of the stage.
        long perRow = (setup.EndLayer - setup.FirstLayer) * LayerKvCache.BytesPerRow(executor.Stage.Config.KvDim);
        return new StageHoldings(executor.HoldsSequence, executor.SequencesInFlight, executor.KvCacheBytes, perRow);
    }

    private PlanningStage Planner(int router) => router < _planners.Length ? _planners[router]
        : throw new ArgumentException($"router {router} asked of a deployment with {_planners.Length}");

    /// <summary>The first stage of a pruned deployment: a router and schedule of an artifact, planning in one pass.</summary>
    private static PlanningStage PlanningStageFor(StageSetup setup, string router, StageExecutor executor)
    {
        // The coordinator checked the artifact against the model when it deployed.
        var artifact = RouterArtifact.Load(router);
        var stages = setup.StageEnds.Select((end, i) => new LayerRange(i == 0 ? 0 : setup.StageEnds[i - 1], end)).ToArray();
        return new PlanningStage(executor, artifact.Schedule, artifact.CreateRouter(), new RoutingOptions
        {
            Mode = RoutingMode.OnePass,
            Stages = setup.StageAwareRouting ? stages : null,
            PruneNewest = setup.PruneNewest,
        });
    }

    /// <summary>The plan as it travels with the rows: per row, the blocks that compute it.</summary>
    private static RowBlockPlan WirePlan(OnePassPlan plan)
    {
        var wire = new RowBlockPlan(plan.Rows, plan.Blocks);
        for (int b = 0; b < plan.Blocks; b++)
            foreach (int row in plan.BlockRows[b]) wire.Set(row, b);
        return wire;
    }

    /// <summary>The first stage: the request's tokens embedded, each row marked with its index and whether its logits are wanted.</summary>
    private static (PacketRow[] Rows, float[] Hidden, RowBlockPlan? Plan) Embed(TransformerStage stage, StepRequest request)
    {
        var sequenceIds = request.SequenceIds ?? throw new ArgumentException("the first stage needs the rows' sequence ids");
        var positions = request.Positions ?? throw new ArgumentException("the first stage needs the rows' positions");
        var tokens = request.Tokens ?? throw new ArgumentException("the first stage needs token ids");
        if (sequenceIds.Length != tokens.Length || positions.Length != tokens.Length)
            throw new ArgumentException($"{tokens.Length} tokens with {sequenceIds.Length} sequence ids and {positions.Length} positions");
        var sampled = request.Samples.Select(s => s.Row).ToHashSet();
        var rows = new PacketRow[tokens.Length];
        for (int i = 0; i < rows.Length; i++)
            rows[i] = new PacketRow(sequenceIds[i], positions[i], i, NeedsLogits: request.ReturnLogits || sampled.Contains(i));
        var hidden = new float[tokens.Length * stage.Config.Dim];
        stage.Embed(tokens, hidden);
        return (rows, hidden, null);
    }

    /// <summary>A later stage: the rows of the request's packet and of those deposited, back in microbatch order.</summary>
    private static (PacketRow[] Rows, float[] Hidden, RowBlockPlan? Plan) Gather(StepRequest request, List<byte[]> deposited, int dim)
    {
        var packets = deposited.Prepend(request.Packet ?? throw new ArgumentException("a stage after the first needs an activation packet"))
            .Select(ActivationCodec.Decode).ToArray();
        if (packets.Length == 1) return (packets[0].Rows, packets[0].HiddenStates, packets[0].Plan);

        var all = packets.SelectMany(p => Enumerable.Range(0, p.RowCount).Select(r => (Packet: p, Row: r)))
            .OrderBy(x => x.Packet.Rows[x.Row].RowIndex).ToArray();
        var planned = packets.Where(p => p.RowCount > 0).Select(p => p.Plan).ToArray();
        if (planned.Any(p => p is null) && planned.Any(p => p is not null))
            throw new InvalidOperationException($"microbatch {request.MicrobatchId}: some packets carry a plan and some do not");
        var rows = new PacketRow[all.Length];
        var hidden = new float[all.Length * dim];
        int layers = planned.FirstOrDefault()?.Layers ?? 0;
        var plan = layers == 0 ? null : new RowBlockPlan(all.Length, layers);
        for (int i = 0; i < all.Length; i++)
        {
            var (packet, row) = all[i];
            rows[i] = packet.Rows[row];
            packet.HiddenRow(row).CopyTo(hidden.AsSpan(i * dim, dim));
            if (plan is not null)
                for (int b = 0; b < layers; b++)
                    if (packet.Plan!.Computes(row, b)) plan.Set(i, b);
        }
        return (rows, hidden, plan);
    }

    /// <summary>The last stage: logits of the rows that need them, and a token drawn for each sample request.</summary>
    /// <param name="logitsOf">Computes the logits of the given rows, handing them over a group at a time.</param>
    private static StepResult Finish(TransformerStage stage, StageSetup setup, StepRequest request, PacketRow[] rows,
        LogitsOf logitsOf)
    {
        int vocab = stage.Config.VocabSize;
        var local = new Dictionary<int, int>(rows.Length);
        for (int i = 0; i < rows.Length; i++) local[rows[i].RowIndex] = i;
        long scoredBytes = (long)rows.Length * vocab * sizeof(float);
        if (request.ReturnLogits && scoredBytes > setup.MaxMessageBytes)
            throw new InvalidOperationException(
                $"the logits of {rows.Length} rows are {scoredBytes} bytes, over the message limit of {setup.MaxMessageBytes}: score fewer tokens per call");
        var samplesOfRow = new Dictionary<int, List<int>>();
        for (int i = 0; i < request.Samples.Length; i++)
        {
            int at = local.TryGetValue(request.Samples[i].Row, out int found) ? found
                : throw new ArgumentException($"sample request for row {request.Samples[i].Row}, which did not reach the last stage");
            if (!samplesOfRow.TryGetValue(at, out var samples)) samplesOfRow[at] = samples = [];
            samples.Add(i);
        }
        // Scoring marks every row: the logits are the microbatch's rows in order. Else only the rows sampled from go
        // through the LM head, together: one pass over its weights per group of rows instead of one per row.
        int[] wanted = request.ReturnLogits ? [.. Enumerable.Range(0, rows.Length)] : [.. samplesOfRow.Keys.Order()];
        var all = request.ReturnLogits ? new float[rows.Length * vocab] : null;
        var tokens = new int[request.Samples.Length];
        SampledLogprobs?[]? logprobs = null;
        logitsOf(wanted, (first, logits) =>
        {
            if (all is not null) logits.CopyTo(all.AsSpan(first * vocab));
            for (int j = 0; j < logits.Length / vocab; j++)
            {
                if (!samplesOfRow.TryGetValue(wanted[first + j], out var samples)) continue;
                var row = logits.Slice(j * vocab, vocab);
                foreach (int i in samples)
                {
                    var sample = request.Samples[i];
                    tokens[i] = new Sampler(sample.Sampling).Sample(row, sample.Draw);
                    if (sample.Logprobs >= 0) (logprobs ??= new SampledLogprobs?[tokens.Length])[i] = Logprobs(row, tokens[i], sample.Logprobs);
                }
            }
        });
        byte[]? logitBytes = all is null ? null : MemoryMarshal.AsBytes(all.AsSpan()).ToArray();
        return new StepResult(tokens, logitBytes, vocab, logprobs);
    }

    /// <summary>Computes the logits of the given rows of a microbatch (sorted, distinct), handing them over a group at a time.</summary>
    private delegate void LogitsOf(int[] rows, TransformerStage.LogitsReady onLogits);

    /// <summary>The drawn token's log-probability and the <paramref name="alternatives"/> most likely tokens' (ties: lower id first).</summary>
    private static SampledLogprobs Logprobs(ReadOnlySpan<float> logits, int drawn, int alternatives)
    {
        var logSoftmax = new double[logits.Length];
        Sampler.LogSoftmax(logits, logSoftmax);
        int[] top = [.. Enumerable.Range(0, logSoftmax.Length).OrderByDescending(t => logSoftmax[t]).ThenBy(t => t).Take(alternatives)];
        return new SampledLogprobs((float)logSoftmax[drawn], top, [.. top.Select(t => (float)logSoftmax[t])]);
    }

    public Task Reserve(DeploymentToken token, long[] sequenceIds, int[] lengths)
    {
        var setup = Authorize(token, "a reservation");
        if (sequenceIds.Length != lengths.Length || lengths.Any(length => length < 1))
            throw new ArgumentException($"a reservation needs a length of at least 1 for each of its {sequenceIds.Length} sequences, got [{string.Join(", ", lengths)}]");
        var executor = Executor;
        var gauge = _gauge;
        string stageKey = this.GetPrimaryKeyString();
        return device.Run(() =>
        {
            SequenceAdmission.CheckReservations(stageKey, sequenceIds, lengths, Holdings(executor, setup), options.StageLimits, KvBudgetBytes);
            for (int i = 0; i < sequenceIds.Length; i++)
                executor.Reserve(sequenceIds[i], lengths[i]);
            gauge?.Publish(executor.KvCacheBytes);
        });
    }

    public Task Release(DeploymentToken token, long[] sequenceIds)
    {
        if (_setup is null) return Task.CompletedTask; // never loaded, or its activation was lost: nothing to free
        Authorize(token, "a release");
        return ReleaseSequences(sequenceIds);
    }

    private Task ReleaseSequences(long[] sequenceIds)
    {
        if (_executor is not { } executor) return Task.CompletedTask;
        var planners = _planners;
        var gauge = _gauge;
        return device.Run(() =>
        {
            foreach (long id in sequenceIds)
            {
                // A sequence's router state is in the planner that planned it; its caches are the stage's.
                executor.Release(id);
                foreach (var planner in planners) planner.Release(id);
            }
            gauge?.Publish(executor.KvCacheBytes);
        });
    }

    public Task ReleaseAll(DeploymentToken token)
    {
        if (_setup is null) return Task.CompletedTask;
        Authorize(token, "a release");
        // The rows deposited for the gone coordinator's microbatches would never be taken (and a new one numbers its own from 1).
        Deposits.Clear();
        if (_executor is not { } executor) return Task.CompletedTask;
        return ReleaseSequences(executor.SequenceIds);
    }

    public Task<StageReport> Report(DeploymentToken token) => Report(Authorize(token, "a report"));

    private Task<StageReport> Report(StageSetup setup)
    {
        var executor = Executor;
        var sent = _traffic.Snapshot();
        return Task.FromResult(new StageReport(setup.Index, options.NodeName, setup.FirstLayer, setup.EndLayer,
            executor.Stage.Slice.ResidentBytes, executor.SequencesInFlight,
            sent.Sum(t => t.Bytes), sent.Sum(t => t.Packets), Environment.ProcessId, _microbatches, _rows, _computeSeconds, executor.KvCacheBytes,
            _peakKvCacheBytes));
    }

    public async Task Unload(DeploymentToken token)
    {
        if (_setup is not null) Authorize(token, "an unload");
        await FreeWeights();
        DeactivateOnIdle();
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => FreeWeights();

    /// <summary>On the compute thread, after any work of this stage handed in before.</summary>
    private Task FreeWeights()
    {
        if (_executor is not { } executor) return Task.CompletedTask;
        (_executor, _planners) = (null, []);
        _gaugeTracking?.Dispose();
        (_gauge, _gaugeTracking) = (null, null);
        string key = this.GetPrimaryKeyString();
        return device.Run(() =>
        {
            executor.Dispose();
            loaded.Remove(key);
        });
    }
}
