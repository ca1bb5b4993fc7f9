using System.Runtime.InteropServices;
using FtpCluster.Compute.Inference;
using FtpCluster.Compute.Models;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Placement;
using FtpCluster.Grains.Wire;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Placement;

namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// One stage of a deployment: layers [a, b) of the model on the silo its key names
/// (<c>DEPLOYMENT/stage-I@NODE</c>), with a KV cache per sequence in flight.
/// </summary>
[Alias("FtpCluster.IStageGrain")]
public interface IStageGrain : IGrainWithStringKey
{
    /// <summary>Loads the slice (once; a second call with the same setup is a no-op).</summary>
    [Alias("Load")]
    Task<StageReport> Load(StageSetup setup);

    /// <summary>Runs this stage's blocks over the step's rows and hands the result on down the pipeline.</summary>
    [Alias("Forward")]
    Task<StepResult> Forward(StepRequest request);

    /// <summary>Frees the KV caches of finished or cancelled sequences.</summary>
    [Alias("Release")]
    Task Release(long[] sequenceIds);

    [Alias("Report")]
    Task<StageReport> Report();

    /// <summary>Frees the weights and caches and lets the grain go (after a re-plan moved its layers).</summary>
    [Alias("Unload")]
    Task Unload();
}

/// <remarks>
/// Reentrant: while a stage awaits the stages after it, it computes the next microbatch, so microbatches
/// in flight keep every stage busy and a stage never blocks on a later one. The compute itself runs on
/// the silo's <see cref="ComputeThread"/>, one piece of work at a time in the order handed in, so the
/// grain's turns only move messages and never overlap a stage's use of its weights and caches.
/// </remarks>
[NodePinnedPlacement, Immovable, Reentrant]
[CollectionAgeLimit(AlwaysActive = true)] // its weights and caches are the deployment: never collected for idleness
internal sealed class StageGrain(FtpClusterSiloOptions options, FtpClusterSiloDevice device, ILogger<StageGrain> logger)
    : Grain, IStageGrain
{
    private readonly WireTraffic _traffic = new();
    private Task<StageReport>? _loading;
    private StageSetup? _setup;
    private StageExecutor? _executor;
    private IStageGrain? _next;
    private WireEncoding _wire;
    private long _microbatches;
    private long _rows;

    private StageExecutor Executor => _executor ?? throw new StageNotLoadedException(this.GetPrimaryKeyString());

    public Task<StageReport> Load(StageSetup setup)
    {
        if (_loading is not null)
        {
            if (_setup != setup)
                throw new InvalidOperationException($"stage {this.GetPrimaryKeyString()} is already loaded with another setup");
            return _loading;
        }
        _setup = setup;
        return _loading = LoadOnce(setup);
    }

    private async Task<StageReport> LoadOnce(StageSetup setup)
    {
        var storage = setup.Storage is null ? (TensorDType?)null : TensorDTypeExtensions.Parse(setup.Storage);
        var slice = new SliceSpec(setup.FirstLayer, setup.EndLayer, Embedding: setup.Index == 0, Head: setup.IsLast);
        _wire = WireEncodings.Parse(setup.Wire);
        try
        {
            _executor = await device.Run(() => new StageExecutor(TransformerStage.Load(setup.ModelPath, device.Device, slice, storage)));
        }
        catch (Exception e)
        {
            (_loading, _setup) = (null, null); // nothing was loaded: a later Load may try again
            // Compute has no Orleans codecs: carry the message (file and tensor) alone, in an exception that has one.
            if (e is ModelFormatException) throw new InvalidOperationException(e.Message);
            throw;
        }
        _next = setup.NextStageKey is null ? null : GrainFactory.GetGrain<IStageGrain>(setup.NextStageKey);
        logger.LogInformation("Stage {Stage} on {Node}: layers [{First}, {End}) of {Model}, {Bytes:N0} weight bytes",
            setup.Index, options.NodeName, setup.FirstLayer, setup.EndLayer, setup.ModelPath, _executor.Stage.Slice.ResidentBytes);
        return await Report();
    }

    public async Task<StepResult> Forward(StepRequest request)
    {
        var executor = Executor;
        var setup = _setup!;
        var (rows, sent) = await device.Run(() => Compute(executor, setup, request));
        _microbatches++;
        _rows += rows;
        if (sent.Result is { } result) return result;
        _traffic.Record(setup.Index, setup.Index + 1, _wire, sent.Packet!.Length);
        return await _next!.Forward(request with { SequenceIds = null, Positions = null, Tokens = null, Packet = sent.Packet });
    }

    /// <summary>What a stage's compute hands on: the packet for the next stage, or the last stage's result.</summary>
    private readonly record struct StageOutput(byte[]? Packet, StepResult? Result);

    /// <summary>On the compute thread: this stage's blocks over the step's rows, and what goes on from here.</summary>
    private (int Rows, StageOutput Output) Compute(StageExecutor executor, StageSetup setup, StepRequest request)
    {
        int dim = executor.Stage.Config.Dim;
        long[] sequenceIds;
        int[] positions;
        float[] hidden;
        if (setup.Index == 0)
        {
            sequenceIds = request.SequenceIds ?? throw new ArgumentException("the first stage needs the rows' sequence ids");
            positions = request.Positions ?? throw new ArgumentException("the first stage needs the rows' positions");
            var tokens = request.Tokens ?? throw new ArgumentException("the first stage needs token ids");
            hidden = new float[tokens.Length * dim];
            executor.Stage.Embed(tokens, hidden);
        }
        else
        {
            var packet = ActivationCodec.Decode(request.Packet ?? throw new ArgumentException($"stage {setup.Index} needs an activation packet"));
            sequenceIds = packet.Rows.Select(r => r.SequenceId).ToArray();
            positions = packet.Rows.Select(r => r.Position).ToArray();
            hidden = packet.HiddenStates;
        }
        executor.Forward(sequenceIds, positions, hidden);

        if (setup.IsLast) return (positions.Length, new StageOutput(null, Finish(executor.Stage, setup, request, hidden, positions.Length)));
        var rows = new PacketRow[positions.Length];
        for (int i = 0; i < rows.Length; i++) rows[i] = new PacketRow(sequenceIds[i], positions[i], 0f);
        var outgoing = new ActivationPacket(setup.DeploymentId, request.MicrobatchId, setup.Index, setup.Index + 1, dim, rows, hidden);
        return (positions.Length, new StageOutput(ActivationCodec.Encode(outgoing, _wire, setup.MaxMessageBytes), null));
    }

    /// <summary>The last stage: logits of the rows that need them, and a token drawn for each sample request.</summary>
    private static StepResult Finish(TransformerStage stage, StageSetup setup, StepRequest request, float[] hidden, int rowCount)
    {
        int dim = stage.Config.Dim, vocab = stage.Config.VocabSize;
        float[]? all = null;
        if (request.ReturnLogits)
        {
            all = new float[rowCount * vocab];
            stage.Logits(hidden, rowCount, all);
        }
        var tokens = new int[request.Samples.Length];
        var row = new float[vocab];
        for (int i = 0; i < tokens.Length; i++)
        {
            var sample = request.Samples[i];
            if ((uint)sample.Row >= (uint)rowCount)
                throw new ArgumentException($"sample request for row {sample.Row} of a {rowCount}-row step");
            if (all is not null) all.AsSpan(sample.Row * vocab, vocab).CopyTo(row);
            else stage.Logits(hidden.AsSpan(sample.Row * dim, dim), 1, row);
            tokens[i] = new Sampler(sample.Sampling).Sample(row, sample.Draw);
        }
        byte[]? logitBytes = all is null ? null : MemoryMarshal.AsBytes(all.AsSpan()).ToArray();
        if (logitBytes is not null && logitBytes.Length > setup.MaxMessageBytes)
            throw new InvalidOperationException(
                $"the logits of {rowCount} rows are {logitBytes.Length} bytes, over the message limit of {setup.MaxMessageBytes}: score fewer tokens per call");
        return new StepResult(tokens, logitBytes, vocab);
    }

    public Task Release(long[] sequenceIds)
    {
        if (_executor is not { } executor) return Task.CompletedTask;
        return device.Run(() =>
        {
            foreach (long id in sequenceIds) executor.Release(id);
        });
    }

    public Task<StageReport> Report()
    {
        var setup = _setup ?? throw new StageNotLoadedException(this.GetPrimaryKeyString());
        var executor = Executor;
        var sent = _traffic.Snapshot();
        return Task.FromResult(new StageReport(setup.Index, options.NodeName, setup.FirstLayer, setup.EndLayer,
            executor.Stage.Slice.ResidentBytes, executor.SequencesInFlight,
            sent.Sum(t => t.Bytes), sent.Sum(t => t.Packets), Environment.ProcessId, _microbatches, _rows));
    }

    public async Task Unload()
    {
        await FreeWeights();
        DeactivateOnIdle();
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => FreeWeights();

    /// <summary>On the compute thread, after any work of this stage handed in before.</summary>
    private Task FreeWeights()
    {
        if (_executor is not { } executor) return Task.CompletedTask;
        _executor = null;
        return device.Run(executor.Dispose);
    }
}

/// <summary>
/// A stage that holds no weights: it was never loaded, or Orleans let the activation go (for example
/// when the directory partition that listed it was on a silo that died). The coordinator re-plans.
/// </summary>
[GenerateSerializer]
[Alias("FtpCluster.StageNotLoadedException")]
public sealed class StageNotLoadedException : Exception
{
    public StageNotLoadedException()
    {
    }

    public StageNotLoadedException(string stageKey)
        : base($"stage {stageKey} holds no weights: it was never loaded or its activation was lost")
    {
    }

    public StageNotLoadedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
