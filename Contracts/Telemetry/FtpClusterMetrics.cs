using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using FtpCluster.Grains.Wire;
using static FtpCluster.Grains.Telemetry.FtpClusterTelemetry;

namespace FtpCluster.Grains.Telemetry;

/// <summary>
/// FtpCluster's instruments (names in <see cref="FtpClusterTelemetry.Instruments"/>, meanings in docs/telemetry.md) and
/// the one place that tags them. Every record is one <c>Add</c> or <c>Record</c> per call (callers record per
/// microbatch or per request, never per row), and costs next to nothing while no exporter listens.
/// </summary>
/// <remarks>
/// The observable gauges read <see cref="StageGauge"/> and <see cref="QueueGauge"/> snapshots that grains publish:
/// a gauge's callback runs on the exporter's thread and must never read a grain's own state.
/// </remarks>
public sealed class FtpClusterMetrics
{
    /// <summary>The process-wide instruments on the <c>FtpCluster</c> meter, which the hosts export.</summary>
    public static FtpClusterMetrics Shared { get; } = new(new Meter(MeterName));

    private readonly Counter<long> _tokensComputed;
    private readonly Counter<long> _tokensSkipped;
    private readonly Counter<long> _wireBytes;
    private readonly Histogram<double> _stageComputeDuration;
    private readonly Histogram<int> _stageRows;
    private readonly Histogram<int> _microbatchRows;
    private readonly Counter<long> _batchLines;
    private readonly Histogram<int> _tokenUsage;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _timePerOutputToken;
    private readonly Histogram<double> _requestDuration;
    private readonly ConcurrentDictionary<StageGauge, byte> _stages = new();
    private readonly ConcurrentDictionary<QueueGauge, byte> _queues = new();

    /// <param name="meter">The meter to create the instruments on (tests give their own).</param>
    public FtpClusterMetrics(Meter meter)
    {
        _tokensComputed = meter.CreateCounter<long>(Instruments.TokensComputed, "{token}",
            "Tokens a transformer block computed (FTP kept them)");
        _tokensSkipped = meter.CreateCounter<long>(Instruments.TokensSkipped, "{token}",
            "Tokens a transformer block skipped (FTP pruned them: no compute, no KV-cache entry there)");
        _wireBytes = meter.CreateCounter<long>(Instruments.WireBytes, "By",
            "Encoded activation bytes a pipeline stage sent on to a later one");
        _stageComputeDuration = meter.CreateHistogram(Instruments.StageComputeDuration, "s",
            "Time a stage computed one microbatch (its blocks, and the LM head on the last)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _stageRows = meter.CreateHistogram<int>(Instruments.StageRows, "{row}",
            "Rows a stage computed in one microbatch (fewer than the microbatch's when FTP kept the rest from it)",
            advice: RowBuckets);
        _microbatchRows = meter.CreateHistogram<int>(Instruments.MicrobatchRows, "{row}",
            "Rows (tokens of all its sequences) of one microbatch a coordinator sent into the pipeline",
            advice: RowBuckets);
        _batchLines = meter.CreateCounter<long>(Instruments.BatchLines, "{line}",
            "Batch lines a job finished, by outcome");
        _tokenUsage = meter.CreateHistogram<int>(Instruments.TokenUsage, "{token}",
            "Input (prompt) and output (generated) tokens of one request, by gen_ai.token.type",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576] });
        _timeToFirstToken = meter.CreateHistogram(Instruments.TimeToFirstToken, "s",
            "Time from a request's arrival at its coordinator to its first generated token",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] });
        _timePerOutputToken = meter.CreateHistogram(Instruments.TimePerOutputToken, "s",
            "Mean time per generated token after the first, one value per request",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5] });
        _requestDuration = meter.CreateHistogram(Instruments.RequestDuration, "s",
            "Time from a request's arrival at its coordinator to its last token",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92] });
        meter.CreateObservableGauge(Instruments.KvCacheBytes, ObserveKvCaches, "By",
            "Bytes a stage's KV caches hold now, for every sequence in flight there");
        meter.CreateObservableGauge(Instruments.SequencesWaiting, () => _queues.Keys.Select(q => q.WaitingMeasurement()), "{sequence}",
            "Sequences of a deployment waiting for admission (room in the stages' KV caches)");
        meter.CreateObservableGauge(Instruments.OnlineRequests, () => _queues.Keys.Select(q => q.OnlineMeasurement()), "{request}",
            "Online (HTTP) requests a deployment's coordinator holds, running or waiting");
    }

    private static readonly InstrumentAdvice<int> RowBuckets = new() { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096] };

    /// <summary>Whether anything listens for the per-block token counts (their counting can then be skipped).</summary>
    public bool BlockTokensEnabled => _tokensComputed.Enabled || _tokensSkipped.Enabled;

    /// <summary>One microbatch's rows at each of the model's blocks: block b computed <c>computedPerBlock[b]</c> of <paramref name="rows"/>.</summary>
    public void RecordBlockTokens(string deployment, ReadOnlySpan<int> computedPerBlock, int rows)
    {
        for (int block = 0; block < computedPerBlock.Length; block++)
        {
            var tags = new TagList { { Attributes.Deployment, deployment }, { Attributes.Block, block } };
            _tokensComputed.Add(computedPerBlock[block], tags);
            _tokensSkipped.Add(rows - computedPerBlock[block], tags);
        }
    }

    /// <summary>One packet sent from stage <paramref name="sourceStage"/> (the boundary it leaves by) to <paramref name="targetStage"/>.</summary>
    public void RecordWireBytes(string deployment, int sourceStage, int targetStage, WireEncoding encoding, long bytes) =>
        _wireBytes.Add(bytes, new TagList
        {
            { Attributes.Deployment, deployment },
            { Attributes.Boundary, sourceStage },
            { Attributes.TargetStage, targetStage },
            { Attributes.Encoding, encoding.CliWord() },
        });

    /// <summary>One microbatch's compute at one stage: its time and the rows it computed.</summary>
    public void RecordStageCompute(string deployment, int stage, double seconds, int rows)
    {
        var tags = new TagList { { Attributes.Deployment, deployment }, { Attributes.Stage, stage } };
        _stageComputeDuration.Record(seconds, tags);
        _stageRows.Record(rows, tags);
    }

    /// <summary>One microbatch a coordinator sends into the pipeline.</summary>
    public void RecordMicrobatch(string deployment, int rows) =>
        _microbatchRows.Record(rows, new KeyValuePair<string, object?>(Attributes.Deployment, deployment));

    /// <summary>Batch lines a job stored, by outcome.</summary>
    public void RecordBatchLines(string job, int completed, int failed)
    {
        if (completed > 0) _batchLines.Add(completed, new TagList { { Attributes.Job, job }, { Attributes.Outcome, Values.Completed } });
        if (failed > 0) _batchLines.Add(failed, new TagList { { Attributes.Job, job }, { Attributes.Outcome, Values.Failed } });
    }

    /// <summary>A request's first generated token, <paramref name="seconds"/> after it arrived.</summary>
    public void RecordTimeToFirstToken(GenerationLabels labels, double seconds) => _timeToFirstToken.Record(seconds, labels.Tags());

    /// <summary>
    /// A request that finished generating: its duration, its token usage, and (with more than one output token) its
    /// mean time per output token after the first.
    /// </summary>
    public void RecordRequest(GenerationLabels labels, double seconds, double firstTokenSeconds, int inputTokens, int outputTokens)
    {
        var tags = labels.Tags();
        _requestDuration.Record(seconds, tags);
        if (outputTokens > 1) _timePerOutputToken.Record((seconds - firstTokenSeconds) / (outputTokens - 1), tags);
        var input = tags;
        input.Add(Attributes.TokenType, Values.InputTokens);
        _tokenUsage.Record(inputTokens, input);
        var output = tags;
        output.Add(Attributes.TokenType, Values.OutputTokens);
        _tokenUsage.Record(outputTokens, output);
    }

    /// <summary>A request that ended without its answer: its duration, with the error's type.</summary>
    public void RecordFailedRequest(GenerationLabels labels, double seconds, string errorType)
    {
        var tags = labels.Tags();
        tags.Add(Attributes.ErrorType, errorType);
        _requestDuration.Record(seconds, tags);
    }

    /// <summary>Reports <paramref name="gauge"/>'s KV-cache bytes until the returned handle is disposed.</summary>
    public IDisposable Track(StageGauge gauge)
    {
        _stages[gauge] = 0;
        return new Untracking(() => _stages.TryRemove(gauge, out _));
    }

    /// <summary>Reports <paramref name="gauge"/>'s queue depths until the returned handle is disposed.</summary>
    public IDisposable Track(QueueGauge gauge)
    {
        _queues[gauge] = 0;
        return new Untracking(() => _queues.TryRemove(gauge, out _));
    }

    private IEnumerable<Measurement<long>> ObserveKvCaches() => _stages.Keys.Select(s => s.Measurement());

    private sealed class Untracking(Action untrack) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) untrack();
        }
    }
}

/// <summary>The attributes of a request's <c>gen_ai.*</c> measurements: what it asked for, of which model.</summary>
/// <param name="Operation">The gen_ai operation: <c>chat</c> or <c>text_completion</c>.</param>
/// <param name="Model">The model's served name.</param>
public readonly record struct GenerationLabels(string Operation, string Model, string Deployment)
{
    internal TagList Tags() => new()
    {
        { FtpClusterTelemetry.Attributes.OperationName, Operation },
        { FtpClusterTelemetry.Attributes.ProviderName, FtpClusterTelemetry.Values.Provider },
        { FtpClusterTelemetry.Attributes.RequestModel, Model },
        { FtpClusterTelemetry.Attributes.Deployment, Deployment },
    };
}

/// <summary>
/// What one stage publishes for the KV-cache gauge: the grain writes after its compute, the exporter's thread reads.
/// </summary>
public sealed class StageGauge(string deployment, int stage)
{
    private long _kvCacheBytes;

    public void Publish(long kvCacheBytes) => Volatile.Write(ref _kvCacheBytes, kvCacheBytes);

    internal Measurement<long> Measurement() => new(Volatile.Read(ref _kvCacheBytes),
        new KeyValuePair<string, object?>(FtpClusterTelemetry.Attributes.Deployment, deployment),
        new KeyValuePair<string, object?>(FtpClusterTelemetry.Attributes.Stage, stage));
}

/// <summary>
/// What one deployment's coordinator publishes for the queue gauges: sequences waiting for admission and online
/// requests held, written on the grain's turns, read on the exporter's thread.
/// </summary>
public sealed class QueueGauge(string deployment)
{
    private int _waiting;
    private int _online;

    public void PublishWaiting(int sequences) => Volatile.Write(ref _waiting, sequences);

    public void PublishOnline(int requests) => Volatile.Write(ref _online, requests);

    internal Measurement<int> WaitingMeasurement() =>
        new(Volatile.Read(ref _waiting), new KeyValuePair<string, object?>(FtpClusterTelemetry.Attributes.Deployment, deployment));

    internal Measurement<int> OnlineMeasurement() =>
        new(Volatile.Read(ref _online), new KeyValuePair<string, object?>(FtpClusterTelemetry.Attributes.Deployment, deployment));
}
