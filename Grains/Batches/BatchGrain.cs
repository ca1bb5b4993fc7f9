using System.Text;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Files;
using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Jobs;
using FtpCluster.Grains.Pipeline;
using Microsoft.Extensions.Logging;

namespace FtpCluster.Grains.Batches;

/// <summary>What a batch keeps in grain storage: its spec, where it is in its life, and its files' pieces.</summary>
[GenerateSerializer]
[Alias("FtpCluster.BatchRecord")]
public sealed class BatchRecord
{
    [Id(0)] public BatchSpec? Spec { get; set; }
    [Id(1)] public string Status { get; set; } = BatchStatus.Validating;

    /// <summary>The status the batch ends in once its files are written; set when its job has ended (or was stopped).</summary>
    [Id(2)] public string? Outcome { get; set; }

    [Id(3)] public DateTimeOffset CreatedAt { get; set; }
    [Id(4)] public DateTimeOffset ExpiresAt { get; set; }
    [Id(5)] public DateTimeOffset? InProgressAt { get; set; }
    [Id(6)] public DateTimeOffset? FinalizingAt { get; set; }
    [Id(7)] public DateTimeOffset? CompletedAt { get; set; }
    [Id(8)] public DateTimeOffset? FailedAt { get; set; }
    [Id(9)] public DateTimeOffset? ExpiredAt { get; set; }
    [Id(10)] public DateTimeOffset? CancellingAt { get; set; }
    [Id(11)] public DateTimeOffset? CancelledAt { get; set; }

    /// <summary>The ids the output and error files get, chosen at creation so a finalize begun again writes the same pieces.</summary>
    [Id(12)] public string OutputFileId { get; set; } = "";
    [Id(13)] public string ErrorFileId { get; set; } = "";
    [Id(14)] public bool OutputCommitted { get; set; }
    [Id(15)] public bool ErrorCommitted { get; set; }

    [Id(16)] public string? DeploymentId { get; set; }
    [Id(17)] public bool JobCreated { get; set; }

    /// <summary>Every line of the input is in the job or in the error file: the job may start.</summary>
    [Id(18)] public bool InputRead { get; set; }

    /// <summary>Lines refused before running (by the reader, or for a url other than the batch's endpoint).</summary>
    [Id(19)] public int FailedBeforeRunning { get; set; }

    /// <summary>Lines handed to the job so far.</summary>
    [Id(20)] public int LinesInJob { get; set; }

    /// <summary>The error file's pieces holding the lines refused before running; the job's failures follow them.</summary>
    [Id(21)] public FilePieces ErrorsBeforeRunning { get; set; } = FilePieces.None;

    [Id(22)] public List<BatchError> Errors { get; set; } = [];

    /// <summary>The request counts once the batch has ended (until then they are the job's, live).</summary>
    [Id(23)] public int Total { get; set; }
    [Id(24)] public int Completed { get; set; }
    [Id(25)] public int Failed { get; set; }
}

/// <summary>The codes of a batch's own errors (its lines' codes are <see cref="ErrorCodes"/>).</summary>
public static class BatchErrorCodes
{
    public const string ModelNotFound = ErrorCodes.ModelNotFound;
    public const string FileNotFound = "file_not_found";
    public const string EmptyFile = "empty_file";
    public const string JobFailed = "job_failed";

    /// <summary>A line not run when the batch's completion window ran out.</summary>
    public const string BatchExpired = "batch_expired";
}

/// <remarks>
/// The work (reading the input into the job, following it, writing the files) is not done in grain calls but by a
/// driver of the activation, started by <see cref="Create"/>, by a timer every <see cref="TickPeriod"/> while the
/// batch is active, and by a reminder that brings it back on another silo after its host was lost. The driver goes
/// on from the phase the record says; each phase can be begun again from its start. Calls are answered while it waits.
/// </remarks>
internal sealed class BatchGrain(
    ILogger<BatchGrain> logger,
    [PersistentState("batch", FtpClusterSiloBuilderExtensions.JobStorage)] IPersistentState<BatchRecord> record)
    : Grain, IBatchGrain, IRemindable, IDisposable
{
    /// <summary>Lines of one batch running at once: enough to fill a deployment's microbatches, few enough to leave room for other work.</summary>
    public const int MaxConcurrent = 64;

    public const string CompletionWindow = "24h";

    private const string DriveReminder = "drive";

    /// <summary>Bytes of request bodies per <see cref="IJobGrain.AddLines"/> call, as the command line's uploads.</summary>
    private const int AddLinesBytes = 4 << 20;

    /// <summary>Bytes of result bodies per <see cref="IJobGrain.Results"/> page.</summary>
    private const int ResultsPageBytes = 4 << 20;

    /// <summary>Line errors a batch that fails before running lists in its errors (the rest are alike).</summary>
    private const int ReportedLineErrors = 16;

    /// <summary>The job of a batch that failed before it had a deployment: it runs nothing, and lets the batch be listed with the jobs.</summary>
    private const string NoDeployment = "-";

    private static readonly TimeSpan Window = TimeSpan.FromHours(24);

    /// <summary>How soon the driver sees its job end: a polled batch completes within about this long of its job.</summary>
    private static readonly TimeSpan TickPeriod = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan ReminderPeriod = TimeSpan.FromSeconds(15);

    private readonly SemaphoreSlim _saving = new(1, 1);
    private Task? _driver;
    private IGrainTimer? _ticks;

    private string Id => this.GetPrimaryKeyString();

    private BatchRecord State => record.State;

    private IJobGrain Job => GrainFactory.GetGrain<IJobGrain>(Id);

    private bool Expired => DateTimeOffset.UtcNow > State.ExpiresAt;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (State.Spec is not null && !BatchStatus.IsFinal(State.Status)) KeepDriving();
        return base.OnActivateAsync(cancellationToken);
    }

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (State.Spec is null || BatchStatus.IsFinal(State.Status)) return StopReminder();
        KeepDriving();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _ticks?.Dispose();
        _saving.Dispose();
    }

    public async Task<BatchInfo> Create(BatchSpec spec)
    {
        if (State.Spec is { } existing)
            return SameSpec(existing, spec) ? (await Info())!
                : throw new InvalidOperationException($"batch {Id} exists already, for file {existing.InputFileId} on {existing.Endpoint}");
        if (!Id.StartsWith("batch_", StringComparison.Ordinal)) throw new ArgumentException($"a batch's id starts with 'batch_', got '{Id}'");
        if (spec.Endpoint is not (CompletionEndpoints.CompletionsUrl or CompletionEndpoints.ChatCompletionsUrl))
            throw new ArgumentException($"'endpoint' must be {CompletionEndpoints.CompletionsUrl} or {CompletionEndpoints.ChatCompletionsUrl}, got '{spec.Endpoint}'");
        if (spec.CompletionWindow != CompletionWindow)
            throw new ArgumentException($"'completion_window' must be \"{CompletionWindow}\", got \"{spec.CompletionWindow}\"");
        var input = await GrainFactory.GetGrain<IFileGrain>(spec.InputFileId).Info()
            ?? throw new ArgumentException($"'input_file_id': there is no file {spec.InputFileId}");
        if (input.Purpose != FileLimits.BatchPurpose)
            throw new ArgumentException($"'input_file_id': file {input.Id} ({input.Filename}) has purpose '{input.Purpose}'; a batch reads a file of purpose '{FileLimits.BatchPurpose}'");

        var now = DateTimeOffset.UtcNow;
        record.State = new BatchRecord
        {
            Spec = spec, CreatedAt = now, ExpiresAt = now + Window,
            OutputFileId = FileLimits.NewFileId(), ErrorFileId = FileLimits.NewFileId(),
        };
        await Save();
        await this.RegisterOrUpdateReminder(DriveReminder, ReminderPeriod, ReminderPeriod);
        KeepDriving();
        return Describe(job: null);
    }

    public async Task<BatchInfo?> Info()
    {
        if (State.Spec is null) return null;
        if (BatchStatus.IsFinal(State.Status) || !State.JobCreated || State.Status == BatchStatus.Validating) return Describe(job: null);
        var job = await Job.Info();
        // Promptly, not only at the next tick; the driver does the work, not this call.
        if (JobStatus.IsFinal(job.Status)) KeepDriving();
        return Describe(job);
    }

    public async Task<BatchInfo> Cancel()
    {
        if (State.Spec is null) throw new KeyNotFoundException($"there is no batch {Id}");
        if (BatchStatus.IsFinal(State.Status))
            throw new InvalidOperationException($"batch {Id} is {State.Status}: it has ended, nothing to cancel");
        if (State.Status == BatchStatus.Finalizing)
            throw new InvalidOperationException($"batch {Id} is finalizing: its lines have all ended and its files are being written, nothing to cancel");
        if (State.Status != BatchStatus.Cancelling)
        {
            (State.Status, State.CancellingAt) = (BatchStatus.Cancelling, DateTimeOffset.UtcNow);
            await Save();
            KeepDriving();
        }
        return (await Info())!;
    }

    /// <summary>Starts the timer unless it runs, and the driver.</summary>
    private void KeepDriving()
    {
        _ticks ??= this.RegisterGrainTimer(_ =>
        {
            Drive();
            return Task.CompletedTask;
        }, new GrainTimerCreationOptions(TickPeriod, TickPeriod) { Interleave = true, KeepAlive = true });
        Drive();
    }

    /// <summary>Starts the driver unless it runs.</summary>
    private void Drive()
    {
        if (_driver is { IsCompleted: false }) return;
        _driver = DriveAsync();
    }

    /// <summary>
    /// Takes the batch through its phases until it must wait for its job (the next tick goes on) or has ended. A
    /// failure it cannot blame on the batch (a silo lost, storage away) leaves the phase to be begun again at the next tick.
    /// </summary>
    private async Task DriveAsync()
    {
        try
        {
            while (!BatchStatus.IsFinal(State.Status))
            {
                if (State.Outcome is not null) await Finalize();
                else if (State.Status == BatchStatus.Cancelling) await Stop(BatchStatus.Cancelled);
                else if (Expired) await Stop(BatchStatus.Expired);
                else if (State.Status == BatchStatus.Validating) await Validate();
                else if (State.Status != BatchStatus.InProgress || !await FollowJob()) return;
            }
            await StopDriving();
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Batch {Batch}: {Status} did not go through; trying again at the next tick", Id, State.Status);
        }
    }

    /// <summary>Reads the input into the job and starts it; or fails the batch when its file or model is not there.</summary>
    private async Task Validate()
    {
        if (!State.InputRead)
        {
            var spec = State.Spec!;
            var input = await GrainFactory.GetGrain<IFileGrain>(spec.InputFileId).Info();
            if (input is null)
            {
                await FailValidation(new BatchError(BatchErrorCodes.FileNotFound, $"the input file {spec.InputFileId} is gone: it was deleted before the batch read it", "input_file_id", null));
                return;
            }
            await ReadInput(input);
            if (!State.InputRead) return;
        }
        if (State.Status != BatchStatus.Validating) return;
        await Job.Start();
        if (State.Status != BatchStatus.Validating) return;
        (State.Status, State.InProgressAt) = (BatchStatus.InProgress, DateTimeOffset.UtcNow);
        await Save();
    }

    /// <summary>
    /// Reads the input from its start: its refused lines into the error file's first pieces, its runnable ones into
    /// the job (skipping those the job has from an earlier try: the file reads the same each time). Stops early when
    /// the batch is cancelled or expires meanwhile (what was read is kept), or fails it when the file goes or no
    /// deployment serves its model.
    /// </summary>
    private async Task ReadInput(StoredFile input)
    {
        var spec = State.Spec!;
        int inJob = State.JobCreated ? (await Job.Info()).Lines : 0;
        (State.FailedBeforeRunning, State.LinesInJob) = (0, 0);
        var errors = new StoredFileWriter(GrainFactory, State.ErrorFileId);
        var lineErrors = new List<BatchError>();
        var lines = new List<CompletionLine>();
        long linesBytes = 0;
        using var stop = new CancellationTokenSource();
        try
        {
            await foreach (var entry in BatchInputEntries.Read(GrainFactory, input, stop.Token).ReadAllAsync())
            {
                if (State.Status != BatchStatus.Validating || Expired) break;
                switch (entry)
                {
                    case BatchLineError error:
                        await errors.WriteLine(BatchOutputLine.Failure(error).Json);
                        State.FailedBeforeRunning++;
                        if (lineErrors.Count < ReportedLineErrors) lineErrors.Add(new BatchError(error.Code, error.Message, null, error.LineNumber));
                        break;
                    case BatchLine line:
                        if (State.DeploymentId is null && !await FindDeployment(input, line))
                        {
                            await errors.Discard();
                            return;
                        }
                        if (line.Endpoint.Url() != spec.Endpoint)
                        {
                            await errors.WriteLine(BatchOutputLine.Failure(line.LineNumber, line.CustomId, ErrorCodes.InvalidValue,
                                $"{input.Filename} line {line.LineNumber}: 'url' is {line.Endpoint.Url()}, but the batch's endpoint is {spec.Endpoint}: every line of a batch goes to its endpoint").Json);
                            State.FailedBeforeRunning++;
                            break;
                        }
                        if (++State.LinesInJob <= inJob) break;
                        if (lines.Count > 0 && linesBytes + line.Body.Length > AddLinesBytes)
                        {
                            await Job.AddLines([.. lines]);
                            (lines, linesBytes) = ([], 0);
                        }
                        lines.Add(new CompletionLine(line.CustomId, line.LineNumber, line.Endpoint.Url(), line.Body));
                        linesBytes += line.Body.Length;
                        break;
                }
            }
        }
        catch (StoredFileChangedException e)
        {
            // Only a file that changed fails the batch; a piece that could not be fetched (a silo lost) is tried again.
            await errors.Discard();
            await FailValidation(new BatchError(BatchErrorCodes.FileNotFound, e.Message, "input_file_id", null));
            return;
        }
        finally
        {
            stop.Cancel();
        }
        if (State.DeploymentId is null && State.Status == BatchStatus.Validating && !Expired)
        {
            await errors.Discard();
            await FailValidation(lineErrors.Count > 0 ? [.. lineErrors]
                : [new BatchError(BatchErrorCodes.EmptyFile, $"the input file {input.Id} ({input.Filename}) has no requests: every line is blank", "input_file_id", null)]);
            return;
        }
        if (lines.Count > 0) await Job.AddLines([.. lines]);
        State.ErrorsBeforeRunning = await errors.Flush();
        // Read to its end, or stopped: either way what was read is the batch's.
        State.InputRead = State.Status == BatchStatus.Validating && !Expired;
        await Save();
    }

    /// <summary>
    /// The deployment serving the first request's model, and the job on it; false (the batch failed) when none serves it.
    /// </summary>
    private async Task<bool> FindDeployment(StoredFile input, BatchLine line)
    {
        var served = await GrainFactory.GetGrain<IDeploymentListGrain>(0).Served();
        var deployment = Array.Find(served, d => d.Name == line.Request.Model);
        if (deployment is null)
        {
            string names = served.Length == 0 ? "no model is served" : "the served models are " + string.Join(", ", served.Select(d => d.Name).Distinct());
            await FailValidation(new BatchError(BatchErrorCodes.ModelNotFound,
                $"{input.Filename} line {line.LineNumber}: no deployment serves the model '{line.Request.Model}'; {names}", "body.model", line.LineNumber));
            return false;
        }
        await Job.Create(new JobSpec(deployment.DeploymentId, input.Filename, MaxConcurrent));
        (State.DeploymentId, State.JobCreated) = (deployment.DeploymentId, true);
        await Save();
        return true;
    }

    /// <summary>
    /// Fails the batch before it ran anything. Its job is stopped, or made empty when there was none, so that the batch
    /// is listed with the jobs like any other.
    /// </summary>
    private async Task FailValidation(params BatchError[] errors)
    {
        if (State.JobCreated) await Job.Cancel();
        else await CreateEmptyJob();
        State.Errors = [.. errors];
        (State.Total, State.Completed, State.Failed) = (0, 0, 0);
        (State.Status, State.FailedAt) = (BatchStatus.Failed, DateTimeOffset.UtcNow);
        await Save();
    }

    /// <summary>The job of a batch that ends before it found its deployment: it has no lines and ends at once.</summary>
    private async Task CreateEmptyJob()
    {
        var input = await GrainFactory.GetGrain<IFileGrain>(State.Spec!.InputFileId).Info();
        await Job.Create(new JobSpec(NoDeployment, input?.Filename ?? State.Spec.InputFileId, MaxConcurrent));
        await Job.Start();
        State.JobCreated = true;
    }

    /// <summary>False while the job runs; once it has ended, sets what the batch ends as and begins finalizing.</summary>
    private async Task<bool> FollowJob()
    {
        var job = await Job.Info();
        if (!JobStatus.IsFinal(job.Status)) return false;
        if (State.Status != BatchStatus.InProgress) return true;
        if (job.Status == JobStatus.Failed)
            State.Errors.Add(new BatchError(BatchErrorCodes.JobFailed, $"job {Id} failed: {job.Error}", null, null));
        State.Outcome = job.Status switch
        {
            JobStatus.Completed => BatchStatus.Completed,
            JobStatus.Failed => BatchStatus.Failed,
            _ => BatchStatus.Cancelled,
        };
        (State.Status, State.FinalizingAt) = (BatchStatus.Finalizing, DateTimeOffset.UtcNow);
        await Save();
        return true;
    }

    /// <summary>Stops the job early (a cancel, or the completion window ran out); what it finished is written all the same.</summary>
    private async Task Stop(string outcome)
    {
        if (State.JobCreated) await Job.Cancel();
        else await CreateEmptyJob();
        State.Outcome = outcome;
        if (outcome == BatchStatus.Expired) (State.Status, State.FinalizingAt) = (BatchStatus.Finalizing, DateTimeOffset.UtcNow);
        await Save();
    }

    /// <summary>
    /// Writes the job's results into the output file and its failures into the error file after the lines refused
    /// before running (and, for an expired batch, the lines that never ran), commits the files that have lines, and
    /// ends the batch. A file committed by an earlier try is kept as it is.
    /// </summary>
    private async Task Finalize()
    {
        var files = await BatchFiles.Open(GrainFactory, Id, State);
        int jobLines = 0;
        var done = new HashSet<string>(StringComparer.Ordinal);
        if (State.JobCreated)
        {
            jobLines = (await Job.Info()).Lines;
            for (int next = 0; ;)
            {
                var page = await Job.Results(next, ResultsPageBytes);
                if (page.Results.Length == 0) break;
                foreach (var result in page.Results)
                {
                    done.Add(result.Key);
                    if (result.Succeeded) await files.Success(BatchOutputLine.Success(result.Key, Encoding.UTF8.GetBytes(result.Body!)));
                    else await files.Failure(BatchOutputLine.Failure(result.LineNumber, result.Key, result.ErrorCode!, result.ErrorMessage!));
                }
                next = page.Next;
            }
        }
        if (State.Outcome == BatchStatus.Expired) await ListUnfinished(files, done, unfinished: jobLines - done.Count);
        var (output, error) = await files.Commit();
        (State.OutputCommitted, State.ErrorCommitted) = (output, error);
        (State.Total, State.Completed, State.Failed) = (jobLines + State.FailedBeforeRunning, files.Successes, State.FailedBeforeRunning + files.Failures);
        var now = DateTimeOffset.UtcNow;
        switch (State.Outcome)
        {
            case BatchStatus.Completed: State.CompletedAt = now; break;
            case BatchStatus.Failed: State.FailedAt = now; break;
            case BatchStatus.Expired: State.ExpiredAt = now; break;
            default: State.CancelledAt = now; break;
        }
        State.Status = State.Outcome!;
        await Save();
    }

    /// <summary>The error lines of the batch's runnable lines that have no result, from its input read again; or, when the input is gone, a batch error saying so.</summary>
    private async Task ListUnfinished(BatchFiles files, HashSet<string> done, int unfinished)
    {
        var spec = State.Spec!;
        var input = await GrainFactory.GetGrain<IFileGrain>(spec.InputFileId).Info();
        if (input is null)
        {
            // Once, though a finalize begun again comes here again.
            if (unfinished > 0 && !State.Errors.Exists(e => e.Code == BatchErrorCodes.BatchExpired))
                State.Errors.Add(new BatchError(BatchErrorCodes.BatchExpired,
                    $"{unfinished} lines had not run when the batch expired; its input file {spec.InputFileId} is gone, so they are not in the error file", "input_file_id", null));
            return;
        }
        using var stop = new CancellationTokenSource();
        try
        {
            await foreach (var entry in BatchInputEntries.Read(GrainFactory, input, stop.Token).ReadAllAsync())
                if (entry is BatchLine line && line.Endpoint.Url() == spec.Endpoint && done.Add(line.CustomId))
                    await files.Failure(BatchOutputLine.Failure(line.LineNumber, line.CustomId, BatchErrorCodes.BatchExpired,
                        $"{input.Filename} line {line.LineNumber}: the batch's completion window of {CompletionWindow} ran out before the line ran"));
        }
        finally
        {
            stop.Cancel();
        }
    }

    private BatchInfo Describe(JobInfo? job)
    {
        var s = State;
        var (total, completed, failed) = BatchStatus.IsFinal(s.Status) ? (s.Total, s.Completed, s.Failed)
            : job is not null ? (job.Lines + s.FailedBeforeRunning, job.Completed, job.Failed + s.FailedBeforeRunning)
            : (s.LinesInJob + s.FailedBeforeRunning, 0, s.FailedBeforeRunning);
        return new BatchInfo(Id, s.Spec!, s.Status, s.OutputCommitted ? s.OutputFileId : null, s.ErrorCommitted ? s.ErrorFileId : null,
            s.CreatedAt, s.InProgressAt, s.ExpiresAt, s.FinalizingAt, s.CompletedAt, s.FailedAt, s.ExpiredAt, s.CancellingAt, s.CancelledAt,
            total, completed, failed, [.. s.Errors], s.DeploymentId);
    }

    private static bool SameSpec(BatchSpec a, BatchSpec b)
    {
        if (a with { Metadata = null } != b with { Metadata = null }) return false;
        var (x, y) = (a.Metadata ?? [], b.Metadata ?? []);
        return x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out var value) && value == p.Value);
    }

    private async Task StopDriving()
    {
        _ticks?.Dispose();
        _ticks = null;
        await StopReminder();
    }

    private async Task StopReminder()
    {
        if (await this.GetReminder(DriveReminder) is { } reminder) await this.UnregisterReminder(reminder);
    }

    /// <summary>One write at a time: the driver and a call may both save.</summary>
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
}
