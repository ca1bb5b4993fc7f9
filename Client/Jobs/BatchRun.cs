using System.Diagnostics;
using FtpCluster.Client.Cluster;
using FtpCluster.Client.Commands;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Jobs;
using FtpCluster.Grains.Pipeline;
using FtpCluster.Grains.Telemetry;

namespace FtpCluster.Client.Jobs;

/// <summary>What <c>ftpcluster run</c> was asked to do, besides the model and the cluster.</summary>
/// <param name="MaxConcurrent">The job's sequences generating at once.</param>
/// <param name="Detach">Leave once the job is submitted; <c>ftpcluster jobs</c> follows it later.</param>
/// <param name="ServedName">The name the requests give as their model; null: the model's own.</param>
internal sealed record RunOptions(string InputPath, string OutputPath, string? ErrorsPath, int MaxConcurrent, bool Json, bool Detach, string? ServedName);

/// <summary>
/// <c>ftpcluster run</c>: reads the input, writes the lines that cannot run as errors at once, submits the rest as a
/// job that lives in the cluster (<see cref="IJobGrain"/>), then follows its results into the output as they come.
/// Lines already in the output are not submitted again, so a run killed and started again resumes where it stopped.
/// </summary>
internal static class BatchRun
{
    /// <summary>Request bodies per upload call, in bytes: far under Orleans' message limit (a line is at most 1 MiB).</summary>
    private const int MaxUploadBytes = 4 << 20;

    public static async Task<int> ExecuteAsync(RunOptions options, ClusterTarget cluster, ModelOptions model, PruningOptions? pruning, CancellationToken cancellation)
    {
        if (!File.Exists(options.InputPath)) throw new UsageException($"--input: no such file: {options.InputPath}");
        if (options.Detach && cluster.IsEmbedded)
            throw new UsageException("--detach needs --cluster HOST:PORT: an embedded cluster stops when the command ends");
        using var output = BatchOutputFiles.Open(options.OutputPath, options.ErrorsPath);
        foreach (var repair in output.Repairs) Console.Error.WriteLine(repair);

        await using var session = await PipelineSession.OpenAsync(cluster, model, pruning, cancellation,
            new ServingOptions(options.ServedName, DeploymentRequest.DefaultIdleUnloadSeconds));
        var job = session.Client.GetGrain<IJobGrain>($"job_{Guid.NewGuid():N}");
        // The root of the run's trace: the job, its driver's calls to the coordinator and every line's span continue it.
        using var span = FtpClusterTelemetry.Source.StartActivity(FtpClusterTelemetry.Spans.Run, ActivityKind.Client);
        span?.SetTag(FtpClusterTelemetry.Attributes.Deployment, session.DeploymentId);
        span?.SetTag(FtpClusterTelemetry.Attributes.Job, job.GetPrimaryKeyString());
        await job.Create(new JobSpec(session.DeploymentId, Path.GetFileName(options.InputPath), options.MaxConcurrent)).WaitAsync(cancellation);
        var local = await Upload(job, options.InputPath, output, cancellation);
        var started = await job.Start().WaitAsync(cancellation);
        Console.Error.WriteLine($"job {started.Id}: {started.Lines} lines on {session.DeploymentId}" +
            (local.Failed > 0 ? $", {local.Failed} refused before running" : "") + (local.Skipped > 0 ? $", {local.Skipped} done before" : ""));
        if (options.Detach)
        {
            Console.WriteLine(started.Id);
            return 0;
        }

        JobInfo finished;
        try
        {
            finished = await JobFollower.FollowAsync(job, output, options.InputPath, new JobProgress(local), cancellation);
        }
        catch (OperationCanceledException)
        {
            // Interrupted: what finished is in the output and a rerun resumes from there; the rest stops on the cluster.
            await job.Cancel().WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
            throw;
        }
        var traffic = await session.TrafficAsync(cancellation);
        JobSummary.Print(finished, local, options.Json, traffic);
        return finished.Status == JobStatus.Completed ? 0 : 1;
    }

    /// <summary>Lines of the input the job does not run: refused by the reader, or done in an earlier run.</summary>
    internal sealed record LocalLines(int Total, int Failed, int Skipped);

    /// <summary>Sends the input's runnable lines to the job, writes the others' errors, and skips what an earlier run wrote.</summary>
    private static async Task<LocalLines> Upload(IJobGrain job, string inputPath, BatchOutputFiles output, CancellationToken cancellation)
    {
        int total = 0, failed = 0, skipped = 0;
        var batch = new List<CompletionLine>();
        long bytes = 0;
        foreach (var entry in BatchInputReader.ReadFile(inputPath))
        {
            total++;
            switch (entry)
            {
                case BatchLine line when output.IsDone(line.CustomId):
                case BatchLineError error when output.IsDone(error.LineNumber) || error.CustomId is { } id && output.IsDone(id):
                    skipped++;
                    break;
                case BatchLineError error:
                    output.Append(BatchOutputLine.Failure(error));
                    failed++;
                    break;
                case BatchLine line:
                    if (batch.Count > 0 && bytes + line.Body.Length > MaxUploadBytes)
                    {
                        await job.AddLines([.. batch]).WaitAsync(cancellation);
                        (batch, bytes) = ([], 0);
                    }
                    batch.Add(new CompletionLine(line.CustomId, line.LineNumber, line.Endpoint.Url(), line.Body));
                    bytes += line.Body.Length;
                    break;
            }
        }
        if (batch.Count > 0) await job.AddLines([.. batch]).WaitAsync(cancellation);
        return new LocalLines(total, failed, skipped);
    }
}
