using System.Diagnostics;
using FtpCluster.Grains.Telemetry;

namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// The request lines each job has handed one deployment: waiting, running (at most the job's own limit at once)
/// and finished until the job collects them. A job that stops collecting (its client died) is cancelled after
/// <see cref="IdleTimeout"/>, so nothing runs for nobody.
/// </summary>
/// <remarks>Used from inside the coordinator grain, whose turns never overlap, so it takes no locks.</remarks>
internal sealed class JobLines(Func<CompletionLine, CancellationToken, Task<CompletionLineResult>> run, TimeProvider time)
{
    /// <summary>Lines one job may have waiting or finished-but-uncollected here; past it, a submission is refused.</summary>
    public const int MaxQueuedPerJob = 4096;

    /// <summary>The longest a collection waits for a result (well inside Orleans' call timeout).</summary>
    public static readonly TimeSpan MaxCollectWait = TimeSpan.FromSeconds(10);

    /// <summary>How long a job may go without collecting before its lines are cancelled.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(60);

    private readonly Dictionary<string, Job> _jobs = new(StringComparer.Ordinal);

    private sealed class Job(string id, DateTimeOffset now)
    {
        public string Id { get; } = id;
        /// <summary>Lines not started yet, each with the span it was submitted in (its line's span continues that trace).</summary>
        public Queue<(CompletionLine Line, ActivityContext Trace)> Waiting { get; } = new();
        public HashSet<string> Keys { get; } = new(StringComparer.Ordinal);
        public List<CompletionLineResult> Finished { get; } = [];
        public CancellationTokenSource Cancellation { get; } = new();
        public int Running { get; set; }
        public int MaxConcurrent { get; set; } = 1;
        public DateTimeOffset LastSeen { get; set; } = now;
        public TaskCompletionSource? ResultArrived { get; set; }
    }

    /// <summary>Queues the lines not already here (by key) and starts what the job's limit allows; returns how many were new.</summary>
    public int Submit(string jobId, CompletionLine[] lines, int maxConcurrent)
    {
        if (maxConcurrent < 1) throw new ArgumentException($"a job runs at least one line at once, got {maxConcurrent}");
        var job = JobFor(jobId);
        int fresh = lines.Count(l => !job.Keys.Contains(l.Key));
        if (job.Waiting.Count + job.Finished.Count + fresh > MaxQueuedPerJob)
            throw new InvalidOperationException($"job {jobId} would have {job.Waiting.Count + job.Finished.Count + fresh} lines queued on this " +
                $"deployment, more than the {MaxQueuedPerJob} a job may queue: submit more as results are collected");
        var trace = Activity.Current?.Context ?? default;
        foreach (var line in lines)
            if (job.Keys.Add(line.Key)) job.Waiting.Enqueue((line, trace));
        job.MaxConcurrent = maxConcurrent;
        StartWhatFits(job);
        return fresh;
    }

    /// <summary>The job's results finished since its last collection, waiting up to <paramref name="maxWait"/> for the first.</summary>
    public async Task<CollectedLines> Collect(string jobId, TimeSpan maxWait)
    {
        var job = JobFor(jobId);
        if (job.Finished.Count == 0 && (job.Running > 0 || job.Waiting.Count > 0))
        {
            // Completed inline by the line that finishes (one turn of the grain at a time, so nothing interleaves).
            var arrived = job.ResultArrived ??= new TaskCompletionSource();
            var wait = TimeSpan.FromTicks(Math.Clamp(maxWait.Ticks, 0, MaxCollectWait.Ticks));
            await Task.WhenAny(arrived.Task, Task.Delay(wait, time));
        }
        job.LastSeen = time.GetUtcNow();
        CompletionLineResult[] results = [.. job.Finished];
        job.Finished.Clear();
        foreach (var r in results) job.Keys.Remove(r.Key);
        return new CollectedLines(results, job.Waiting.Count + job.Running);
    }

    /// <summary>Stops the job's lines: waiting ones never start, running ones leave their microbatch within a step.</summary>
    public void Cancel(string jobId)
    {
        if (!_jobs.Remove(jobId, out var job)) return;
        job.Waiting.Clear();
        job.Cancellation.Cancel();
        job.ResultArrived?.TrySetResult();
    }

    /// <summary>Cancels every job (the deployment is being unloaded).</summary>
    public void CancelAll()
    {
        foreach (string id in _jobs.Keys.ToArray()) Cancel(id);
    }

    /// <summary>Cancels the jobs that have not collected for <see cref="IdleTimeout"/>; returns their ids.</summary>
    public string[] CancelIdle()
    {
        var now = time.GetUtcNow();
        string[] idle = [.. _jobs.Values.Where(j => now - j.LastSeen > IdleTimeout).Select(j => j.Id)];
        foreach (string id in idle) Cancel(id);
        return idle;
    }

    public int JobCount => _jobs.Count;

    private Job JobFor(string jobId)
    {
        if (!_jobs.TryGetValue(jobId, out var job)) _jobs[jobId] = job = new Job(jobId, time.GetUtcNow());
        job.LastSeen = time.GetUtcNow();
        return job;
    }

    private void StartWhatFits(Job job)
    {
        while (job.Running < job.MaxConcurrent && job.Waiting.TryDequeue(out var waiting))
        {
            job.Running++;
            _ = RunLine(job, waiting.Line, waiting.Trace);
        }
    }

    private async Task RunLine(Job job, CompletionLine line, ActivityContext trace)
    {
        CompletionLineResult? result;
        // Ends before the next line starts from here, which would otherwise run inside it.
        using (var span = PipelineSpans.StartRequest(FtpClusterTelemetry.Spans.BatchLine, line, trace))
        {
            span?.SetTag(FtpClusterTelemetry.Attributes.Job, job.Id);
            span?.SetTag(FtpClusterTelemetry.Attributes.Line, line.LineNumber);
            result = await RunOrFail(job, line);
            if (result is not null) PipelineSpans.Finish(span, result);
        }
        job.Running--;
        if (result is null) return;
        job.Finished.Add(result);
        job.ResultArrived?.TrySetResult();
        job.ResultArrived = null;
        StartWhatFits(job);
    }

    /// <summary>The line's result; null when its job was cancelled.</summary>
    private async Task<CompletionLineResult?> RunOrFail(Job job, CompletionLine line)
    {
        try
        {
            return await run(line, job.Cancellation.Token);
        }
        catch (OperationCanceledException) when (job.Cancellation.IsCancellationRequested)
        {
            return null; // the job was cancelled: it keeps only what had finished
        }
        catch (Exception e)
        {
            // What the handler could not turn into an answer (the stages lost beyond recovery): the line fails alone.
            return CompletionLineResult.Failed(line, "server_error", e.Message);
        }
    }
}
