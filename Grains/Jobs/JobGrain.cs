using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Telemetry;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;

namespace FtpCluster.Grains.Jobs;

/// <summary>What a job keeps in grain storage: its spec, status, counts and where its pieces end.</summary>
[GenerateSerializer]
[Alias("FtpCluster.JobRecord")]
public sealed class JobRecord
{
    [Id(0)] public JobSpec? Spec { get; set; }
    [Id(1)] public string Status { get; set; } = JobStatus.Validating;
    [Id(2)] public DateTimeOffset CreatedAt { get; set; }
    [Id(3)] public DateTimeOffset? FinishedAt { get; set; }
    [Id(4)] public int Lines { get; set; }
    [Id(5)] public long InputBytes { get; set; }
    [Id(6)] public int LineChunks { get; set; }
    [Id(7)] public int LastLineChunkCount { get; set; }
    [Id(8)] public long LastLineChunkBytes { get; set; }
    [Id(9)] public int Results { get; set; }
    [Id(10)] public int ResultChunks { get; set; }
    [Id(11)] public int LastResultChunkCount { get; set; }
    [Id(12)] public long LastResultChunkBytes { get; set; }
    [Id(13)] public int Completed { get; set; }
    [Id(14)] public int Failed { get; set; }
    [Id(15)] public long PromptTokens { get; set; }
    [Id(16)] public long GeneratedTokens { get; set; }
    [Id(17)] public long TokensComputed { get; set; }
    [Id(18)] public long TokensSkipped { get; set; }
    [Id(19)] public long WireBytes { get; set; }
    [Id(20)] public DateTimeOffset? FirstSubmittedAt { get; set; }
    [Id(21)] public DateTimeOffset? LastResultAt { get; set; }
    [Id(22)] public string? Error { get; set; }
    /// <summary>The results chunk sizes before the last one, so a position in the log finds its chunk.</summary>
    [Id(23)] public List<int> ResultChunkCounts { get; set; } = [];
}

/// <remarks>
/// Reentrant: status and results calls are answered while its driver waits on the coordinator. The driver is not a
/// grain call but work of the activation: a reminder brings the job back on another silo after its host was lost,
/// and the driver then submits again the lines without results (the coordinator runs a line once per key).
/// </remarks>
[Reentrant]
internal sealed class JobGrain(
    FtpClusterSiloOptions localNode, ILogger<JobGrain> logger,
    [PersistentState("job", FtpClusterSiloBuilderExtensions.JobStorage)] IPersistentState<JobRecord> record)
    : Grain, IJobGrain, IRemindable, IDisposable
{
    private const string DriveReminder = "drive";

    /// <summary>How often the reminder checks that an unfinished job is being driven.</summary>
    private static readonly TimeSpan ReminderPeriod = TimeSpan.FromSeconds(15);

    private static readonly TimeSpan CollectWait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long the job may go without progress before it fails while its coordinator, grain storage (Redis restarting
    /// or failing over) or a silo holding one of its pieces is out of reach.
    /// </summary>
    private static readonly TimeSpan OutageDeadline = TimeSpan.FromMinutes(3);

    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _saving = new(1, 1);
    private Task? _driver;
    private CancellationTokenSource? _cancellation;

    private string Id => this.GetPrimaryKeyString();

    private JobRecord State => record.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (State.Status == JobStatus.InProgress) Drive();
        return base.OnActivateAsync(cancellationToken);
    }

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (JobStatus.IsFinal(State.Status)) return StopReminder();
        if (State.Status == JobStatus.InProgress) Drive();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _cancellation?.Dispose();
        _saving.Dispose();
    }

    public async Task<JobInfo> Create(JobSpec spec)
    {
        if (State.Spec is { } existing)
            return existing == spec ? Describe() : throw new InvalidOperationException($"job {Id} exists already, for {existing.InputName} on {existing.DeploymentId}");
        if (spec.MaxConcurrent is < 1 or > JobLimits.MaxConcurrent)
            throw new ArgumentException($"a job runs 1 to {JobLimits.MaxConcurrent} lines at once, got {spec.MaxConcurrent}");
        State.Spec = spec;
        State.CreatedAt = DateTimeOffset.UtcNow;
        await Save();
        await GrainFactory.GetGrain<IJobListGrain>(0).Add(Id);
        return Describe();
    }

    public async Task<int> AddLines(CompletionLine[] lines)
    {
        if (State.Spec is null) throw new InvalidOperationException($"job {Id} does not exist");
        if (State.Status != JobStatus.Validating)
            throw new InvalidOperationException($"job {Id} is {State.Status}: lines are added before it starts");
        long bytes = lines.Sum(l => (long)l.Body.Length);
        if (State.Lines + lines.Length > JobLimits.MaxLines)
            throw new ArgumentException($"job {Id} would have {State.Lines + lines.Length} lines, more than the {JobLimits.MaxLines} a job may have");
        if (State.InputBytes + bytes > JobLimits.MaxInputBytes)
            throw new ArgumentException($"job {Id} would have {State.InputBytes + bytes} bytes of requests, more than the {JobLimits.MaxInputBytes} a job may have");
        // Into the last piece while it has room, else a new one.
        foreach (var piece in Pieces(lines, State.LastLineChunkCount, State.LastLineChunkBytes, l => l.Body.Length))
        {
            if (piece.NewChunk || State.LineChunks == 0) (State.LineChunks, State.LastLineChunkCount, State.LastLineChunkBytes) = (State.LineChunks + 1, 0, 0);
            await LinesChunk(State.LineChunks - 1).Append(piece.Items);
            State.LastLineChunkCount += piece.Items.Length;
            State.LastLineChunkBytes += piece.Items.Sum(l => (long)l.Body.Length);
        }
        State.Lines += lines.Length;
        State.InputBytes += bytes;
        await Save();
        return State.Lines;
    }

    public async Task<JobInfo> Start()
    {
        if (State.Spec is null) throw new InvalidOperationException($"job {Id} does not exist");
        if (State.Status == JobStatus.Validating)
        {
            State.Status = State.Lines == 0 ? JobStatus.Completed : JobStatus.InProgress;
            if (State.Lines == 0) State.FinishedAt = DateTimeOffset.UtcNow;
            await Save();
        }
        // Again when it had started: the activation that started it may have died between storing the status and
        // registering the reminder, and a caller that saw that call fail asks again.
        if (State.Status == JobStatus.InProgress)
        {
            await this.RegisterOrUpdateReminder(DriveReminder, ReminderPeriod, ReminderPeriod);
            Drive();
        }
        return Describe();
    }

    public Task<JobInfo> Info() =>
        State.Spec is null ? throw new InvalidOperationException($"job {Id} does not exist") : Task.FromResult(Describe());

    public async Task<JobResultsPage> Results(int from, int maxBytes)
    {
        if (State.Spec is null) throw new InvalidOperationException($"job {Id} does not exist");
        if (from < 0 || from > State.Results) throw new ArgumentException($"job {Id} has {State.Results} results; position {from} is outside them");
        var results = new List<CompletionLineResult>();
        long bytes = 0;
        int position = from;
        bool finished = JobStatus.IsFinal(State.Status);
        int total = State.Results;
        bool full = false;
        while (position < total && !full)
        {
            var (chunk, offset) = ResultChunkOf(position);
            var stored = await ResultsChunk(chunk).Read();
            if (offset >= stored.Length)
                throw new InvalidOperationException($"job {Id}: result {position} should be in piece {chunk}, which holds {stored.Length}");
            for (int i = offset; i < stored.Length && position < total; i++)
            {
                int size = stored[i].Body?.Length ?? 0;
                if (results.Count > 0 && bytes + size > maxBytes)
                {
                    full = true;
                    break;
                }
                results.Add(stored[i]);
                bytes += size;
                position++;
            }
        }
        return new JobResultsPage([.. results], position, finished && position == total);
    }

    public async Task<JobInfo> Cancel()
    {
        if (State.Spec is null) throw new InvalidOperationException($"job {Id} does not exist");
        if (JobStatus.IsFinal(State.Status)) return Describe();
        _cancellation?.Cancel();
        try
        {
            await GrainFactory.GetGrain<ICoordinatorGrain>(State.Spec.DeploymentId).CancelJob(Id);
        }
        catch (Exception e) when (ClusterFailures.IsSiloLoss(e))
        {
            // The coordinator is gone: its lines went with it.
        }
        if (_driver is { } driver) await driver.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Current);
        await Finish(JobStatus.Cancelled, error: null);
        return Describe();
    }

    /// <summary>Starts the driver unless it runs.</summary>
    private void Drive()
    {
        if (_driver is { IsCompleted: false }) return;
        _cancellation?.Dispose();
        _cancellation = new CancellationTokenSource();
        _driver = DriveAsync(_cancellation.Token);
    }

    /// <summary>
    /// Drives the job to its end, starting over from the stored results while grain storage, or a silo holding one of
    /// the job's pieces, is out of reach: a write that failed may have stored part of what it was given, so only the
    /// stored results count, and lines whose results were collected but not stored run again (the coordinator forgot
    /// them when it handed them over). It never stops silently: what it cannot go on from fails the job or is logged.
    /// </summary>
    private async Task DriveAsync(CancellationToken cancellation)
    {
        DateTimeOffset? outageSince = null;
        int resultsBefore = State.Results;
        while (true)
        {
            try
            {
                await DriveFromStoredResults(cancellation);
                return;
            }
            catch (Exception e) when ((StorageOutage.Is(e) || ClusterFailures.IsSiloLoss(e)) && !cancellation.IsCancellationRequested)
            {
                // A new outage, after results were stored since the last, gets a deadline of its own.
                if (State.Results != resultsBefore) (outageSince, resultsBefore) = (null, State.Results);
                outageSince ??= DateTimeOffset.UtcNow;
                string unreachable = StorageOutage.Is(e) ? "grain storage" : "a silo holding its pieces";
                if (DateTimeOffset.UtcNow - outageSince > OutageDeadline)
                {
                    logger.LogError(e, "Job {Job}: {Unreachable} has been out of reach for {Seconds} s", Id, unreachable, OutageDeadline.TotalSeconds);
                    await FailUnreachable($"{unreachable} was out of reach for {OutageDeadline.TotalSeconds:F0} s: {e.Message}");
                    return;
                }
                logger.LogWarning("Job {Job}: {Unreachable} failed ({Error}); driving again from the stored results", Id, unreachable, e.Message);
                try
                {
                    await Task.Delay(RetryDelay, cancellation);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            catch (Exception e) when (!cancellation.IsCancellationRequested)
            {
                logger.LogError(e, "Job {Job}: its driver stopped; the reminder starts it again", Id);
                return;
            }
        }
    }

    /// <summary>Fails the job; in memory only when the store is what is gone (what Info reports, and what a later activation finds still in progress).</summary>
    private async Task FailUnreachable(string error)
    {
        try
        {
            await Finish(JobStatus.Failed, error);
        }
        catch (Exception e) when (StorageOutage.Is(e) || ClusterFailures.IsSiloLoss(e))
        {
            (State.Status, State.Error, State.FinishedAt) = (JobStatus.Failed, error, DateTimeOffset.UtcNow);
        }
    }

    /// <summary>
    /// Hands the lines without results to the coordinator, a window at a time, and stores each result as it comes;
    /// when the coordinator's silo is lost, submits the lines in flight again to its next activation.
    /// </summary>
    private async Task DriveFromStoredResults(CancellationToken cancellation)
    {
        var spec = State.Spec!;
        var coordinator = GrainFactory.GetGrain<ICoordinatorGrain>(spec.DeploymentId);
        var done = await ReconcileResults();
        var inFlight = new Dictionary<string, CompletionLine>(StringComparer.Ordinal);
        var waiting = new Queue<CompletionLine>();
        int nextChunk = 0;
        int window = Math.Max(2 * spec.MaxConcurrent, 16);
        var lastContact = DateTimeOffset.UtcNow;
        try
        {
            while (!cancellation.IsCancellationRequested)
            {
                while (waiting.Count + inFlight.Count < window && nextChunk < State.LineChunks)
                    foreach (var line in await LinesChunk(nextChunk++).Read())
                        if (!done.Contains(line.Key)) waiting.Enqueue(line);
                if (waiting.Count == 0 && inFlight.Count == 0) break;
                try
                {
                    var fresh = new List<CompletionLine>();
                    while (inFlight.Count < window && waiting.TryDequeue(out var line))
                    {
                        inFlight[line.Key] = line;
                        fresh.Add(line);
                    }
                    if (fresh.Count > 0)
                    {
                        State.FirstSubmittedAt ??= DateTimeOffset.UtcNow;
                        await coordinator.SubmitLines(Id, [.. fresh], spec.MaxConcurrent);
                    }
                    var collected = await coordinator.CollectLines(Id, CollectWait);
                    lastContact = DateTimeOffset.UtcNow;
                    // A result of a line answered before (by a coordinator thought lost) is not stored twice.
                    var arrived = collected.Results.Where(r => inFlight.Remove(r.Key) && done.Add(r.Key)).ToArray();
                    if (arrived.Length > 0 && !cancellation.IsCancellationRequested) await Store(arrived);
                    // A coordinator that came back between two calls (its silo lost) holds none of our lines and
                    // says so only by holding fewer: hand them all again (those it holds are not queued twice).
                    if (collected.Held < inFlight.Count && !cancellation.IsCancellationRequested)
                    {
                        logger.LogWarning("Job {Job}: the coordinator of {Deployment} holds {Held} of its {Lines} lines in flight; submitting them again",
                            Id, spec.DeploymentId, collected.Held, inFlight.Count);
                        await coordinator.SubmitLines(Id, [.. inFlight.Values], spec.MaxConcurrent);
                    }
                }
                catch (Exception e) when (ClusterFailures.IsSiloLoss(e) && !StorageOutage.Is(e) && DateTimeOffset.UtcNow - lastContact < OutageDeadline)
                {
                    logger.LogWarning("Job {Job}: the coordinator of {Deployment} did not answer ({Error}); submitting its {Lines} lines in flight again",
                        Id, spec.DeploymentId, e.Message, inFlight.Count);
                    await Task.Delay(RetryDelay, cancellation);
                    await coordinator.SubmitLines(Id, [.. inFlight.Values], spec.MaxConcurrent);
                }
            }
            if (!cancellation.IsCancellationRequested) await Finish(JobStatus.Completed, error: null);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
        }
        // A silo lost (one holding a piece of the job, or the coordinator's while it answered lately) does not fail the job: it is driven again.
        catch (Exception e) when (!StorageOutage.Is(e) && !(ClusterFailures.IsSiloLoss(e) && DateTimeOffset.UtcNow - lastContact < OutageDeadline))
        {
            logger.LogError(e, "Job {Job} failed", Id);
            await Finish(JobStatus.Failed, e.Message);
        }
    }

    private async Task Store(CompletionLineResult[] results)
    {
        foreach (var piece in Pieces(results, State.LastResultChunkCount, State.LastResultChunkBytes, r => r.Body?.Length ?? 0))
        {
            if (piece.NewChunk || State.ResultChunks == 0)
            {
                if (State.ResultChunks > 0) State.ResultChunkCounts.Add(State.LastResultChunkCount);
                (State.ResultChunks, State.LastResultChunkCount, State.LastResultChunkBytes) = (State.ResultChunks + 1, 0, 0);
            }
            await ResultsChunk(State.ResultChunks - 1).Append(piece.Items);
            State.LastResultChunkCount += piece.Items.Length;
            State.LastResultChunkBytes += piece.Items.Sum(r => (long)(r.Body?.Length ?? 0));
        }
        foreach (var r in results)
        {
            if (r.Succeeded) State.Completed++;
            else State.Failed++;
            State.PromptTokens += r.PromptTokens;
            State.GeneratedTokens += r.CompletionTokens;
            State.TokensComputed += r.TokensComputed;
            State.TokensSkipped += r.TokensSkipped;
            State.WireBytes += r.WireBytes;
        }
        State.Results += results.Length;
        State.LastResultAt = DateTimeOffset.UtcNow;
        await Save();
        // Counted once stored: a result stored is one the job keeps (a line answered twice is stored once).
        int completed = results.Count(r => r.Succeeded);
        FtpClusterMetrics.Shared.RecordBatchLines(Id, completed, results.Length - completed);
    }

    private async Task Finish(string status, string? error)
    {
        if (JobStatus.IsFinal(State.Status)) return;
        var before = (State.Status, State.Error, State.FinishedAt);
        (State.Status, State.Error, State.FinishedAt) = (status, error, DateTimeOffset.UtcNow);
        try
        {
            await Save();
        }
        catch
        {
            // Not stored, so not final: the driver tries again once storage is back.
            (State.Status, State.Error, State.FinishedAt) = before;
            throw;
        }
        await StopReminder();
    }

    private async Task StopReminder()
    {
        if (await this.GetReminder(DriveReminder) is { } reminder) await this.UnregisterReminder(reminder);
    }

    /// <summary>
    /// The keys of the lines that have results, from the stored results, with the record's counts made to agree
    /// with them: a silo lost between storing a piece of results and storing the record leaves results the record
    /// does not count, and they are the job's all the same (their lines must neither run again nor go missing).
    /// </summary>
    private async Task<HashSet<string>> ReconcileResults()
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var counts = new List<int>();
        var (completed, failed, prompt, generated, computed, skipped, wire, lastBytes) = (0, 0, 0L, 0L, 0L, 0L, 0L, 0L);
        // Every piece the record knows of, and any the lost silo had begun after it.
        for (int chunk = 0; ; chunk++)
        {
            var stored = await ResultsChunk(chunk).Read();
            if (stored.Length == 0 && chunk >= State.ResultChunks) break;
            counts.Add(stored.Length);
            lastBytes = 0;
            foreach (var r in stored)
            {
                keys.Add(r.Key);
                if (r.Succeeded) completed++;
                else failed++;
                (prompt, generated) = (prompt + r.PromptTokens, generated + r.CompletionTokens);
                (computed, skipped, wire) = (computed + r.TokensComputed, skipped + r.TokensSkipped, wire + r.WireBytes);
                lastBytes += r.Body?.Length ?? 0;
            }
        }
        if (counts.Sum() != State.Results)
            logger.LogWarning("Job {Job}: {Stored} results are stored and the record counted {Counted}; the stored ones count", Id, counts.Sum(), State.Results);
        State.ResultChunks = counts.Count;
        State.ResultChunkCounts = counts.Count > 0 ? counts[..^1] : [];
        (State.LastResultChunkCount, State.LastResultChunkBytes, State.Results) = (counts.Count > 0 ? counts[^1] : 0, lastBytes, counts.Sum());
        (State.Completed, State.Failed, State.PromptTokens, State.GeneratedTokens) = (completed, failed, prompt, generated);
        (State.TokensComputed, State.TokensSkipped, State.WireBytes) = (computed, skipped, wire);
        await Save();
        return keys;
    }

    private (int Chunk, int Offset) ResultChunkOf(int position)
    {
        int chunk = 0;
        foreach (int count in State.ResultChunkCounts)
        {
            if (position < count) return (chunk, position);
            position -= count;
            chunk++;
        }
        return (chunk, position);
    }

    /// <summary>Items cut into pieces that keep each stored piece under <see cref="JobLimits"/>'s bounds, the first filling the last piece.</summary>
    private static IEnumerable<(bool NewChunk, T[] Items)> Pieces<T>(T[] items, int lastCount, long lastBytes, Func<T, int> size)
    {
        var piece = new List<T>();
        bool newChunk = false;
        int count = lastCount;
        long bytes = lastBytes;
        foreach (var item in items)
        {
            if (count + 1 > JobLimits.ChunkLines || (count > 0 && bytes + size(item) > JobLimits.ChunkBytes))
            {
                if (piece.Count > 0) yield return (newChunk, [.. piece]);
                (piece, newChunk, count, bytes) = ([], true, 0, 0);
            }
            piece.Add(item);
            count++;
            bytes += size(item);
        }
        if (piece.Count > 0) yield return (newChunk, [.. piece]);
    }

    private JobInfo Describe()
    {
        var s = State;
        var end = s.LastResultAt ?? s.FirstSubmittedAt;
        double seconds = s.FirstSubmittedAt is { } first ? ((JobStatus.IsFinal(s.Status) ? end : DateTimeOffset.UtcNow) - first)!.Value.TotalSeconds : 0;
        return new JobInfo(Id, s.Spec!, s.Status, s.Lines, s.Completed, s.Failed, s.CreatedAt, s.FinishedAt, s.PromptTokens, s.GeneratedTokens,
            s.TokensComputed, s.TokensSkipped, s.WireBytes, seconds, s.Error, localNode.NodeName);
    }

    /// <summary>One write at a time: the driver and a cancel may both save.</summary>
    private async Task Save()
    {
        await _saving.WaitAsync();
        try
        {
            await record.WriteStateAsync();
        }
        finally
        {
            _saving.Release();
        }
    }

    private IJobLinesGrain LinesChunk(int n) => GrainFactory.GetGrain<IJobLinesGrain>($"{Id}/lines/{n}");

    private IJobResultsGrain ResultsChunk(int n) => GrainFactory.GetGrain<IJobResultsGrain>($"{Id}/results/{n}");
}
