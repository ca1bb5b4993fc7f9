using System.Diagnostics;
using FtpCluster.Client.Cluster;
using FtpCluster.Client.Commands;
using FtpCluster.Compute.Serving;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Client.Jobs;

/// <summary>What <c>ftpcluster run</c> was asked to do, besides the model and the cluster.</summary>
/// <param name="MaxConcurrent">The job's sequences generating at once.</param>
internal sealed record RunOptions(string InputPath, string OutputPath, string? ErrorsPath, int MaxConcurrent, bool Json);

/// <summary>
/// A batch job driven from this process: reads the input lines, hands them to the deployment's coordinator a window
/// at a time, and appends each result to the output as it arrives, so a job killed and started again resumes where
/// it stopped (see <see cref="BatchOutputFiles"/>) and writes each <c>custom_id</c> once.
/// </summary>
/// <remarks>
/// Nothing waits on one long call: lines are submitted (returns at once) and results collected (returns within
/// seconds), each call well inside Orleans' timeout. When a call fails because the coordinator's silo is gone, the
/// lines in flight are submitted again to the coordinator's next activation, which resumes the deployment from
/// storage; a line is written when its first result arrives and never again.
/// </remarks>
internal sealed class BatchRun
{
    /// <summary>Request bodies per submission, in bytes: far under Orleans' message limit (a line is at most 1 MiB).</summary>
    private const int MaxSubmitBytes = 4 << 20;

    /// <summary>How long the job may go without reaching its coordinator before it gives up.</summary>
    private static readonly TimeSpan CoordinatorLossDeadline = TimeSpan.FromSeconds(120);

    private static readonly TimeSpan CollectWait = TimeSpan.FromSeconds(2);

    private readonly RunOptions _options;
    private readonly BatchOutputFiles _output;
    private readonly JobProgress _progress;
    private readonly Dictionary<string, CompletionLine> _inFlight = new(StringComparer.Ordinal);
    private readonly string _jobId = $"run-{Environment.ProcessId}-{Guid.NewGuid():N}";

    private BatchRun(RunOptions options, BatchOutputFiles output, JobProgress progress)
    {
        _options = options;
        _output = output;
        _progress = progress;
    }

    public static async Task<int> ExecuteAsync(RunOptions options, ClusterTarget cluster, ModelOptions model, PruningOptions? pruning, CancellationToken cancellation)
    {
        if (!File.Exists(options.InputPath)) throw new UsageException($"--input: no such file: {options.InputPath}");
        using var output = BatchOutputFiles.Open(options.OutputPath, options.ErrorsPath);
        foreach (var repair in output.Repairs) Console.Error.WriteLine(repair);
        var progress = new JobProgress(CountLines(options.InputPath), output.DoneCount);

        await using var session = await PipelineSession.OpenAsync(cluster, model, pruning, cancellation);
        var run = new BatchRun(options, output, progress);
        var summary = await run.RunAsync(session.Coordinator, cancellation);
        progress.Finish(summary);
        var traffic = await session.TrafficAsync(cancellation);
        summary.Print(options.Json, traffic);
        return 0;
    }

    private async Task<JobSummary> RunAsync(ICoordinatorGrain coordinator, CancellationToken cancellation)
    {
        var summary = new JobSummary();
        using var entries = BatchInputReader.ReadFile(_options.InputPath).GetEnumerator();
        bool inputLeft = true;
        int window = Math.Max(2 * _options.MaxConcurrent, 16);
        var lost = Stopwatch.StartNew();
        try
        {
            while (inputLeft || _inFlight.Count > 0)
            {
                cancellation.ThrowIfCancellationRequested();
                var fresh = new List<CompletionLine>();
                while (inputLeft && _inFlight.Count + fresh.Count < window)
                {
                    if (!(inputLeft = entries.MoveNext())) break;
                    switch (entries.Current)
                    {
                        case BatchLine line when !_output.IsDone(line.CustomId):
                            fresh.Add(new CompletionLine(line.CustomId, line.LineNumber, line.Endpoint.Url(), line.Body));
                            break;
                        case BatchLineError error when !_output.IsDone(error.LineNumber) && !(error.CustomId is { } id && _output.IsDone(id)):
                            _output.Append(BatchOutputLine.Failure(error));
                            summary.Add(error);
                            _progress.Report(summary);
                            break;
                    }
                }
                try
                {
                    foreach (var line in fresh) _inFlight[line.Key] = line;
                    if (fresh.Count > 0) summary.Start();
                    await Submit(coordinator, fresh, cancellation);
                    var results = await coordinator.CollectLines(_jobId, CollectWait).WaitAsync(cancellation);
                    lost.Restart();
                    foreach (var result in results)
                    {
                        if (!_inFlight.Remove(result.Key)) continue; // answered before, by a coordinator that was thought lost
                        summary.Add(result);
                        _output.Append(OutputLine(result));
                    }
                    _progress.Report(summary);
                }
                catch (Exception e) when (IsCoordinatorLoss(e) && lost.Elapsed < CoordinatorLossDeadline)
                {
                    // The coordinator's silo is gone: its next activation resumes the deployment, and gets the lines again.
                    Console.Error.WriteLine($"run: the coordinator did not answer ({e.Message}); submitting the {_inFlight.Count} lines in flight again");
                    await Task.Delay(TimeSpan.FromSeconds(1), cancellation);
                    await Submit(coordinator, [.. _inFlight.Values], cancellation);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Interrupted: what finished is in the output; a rerun resumes from there. Stop the rest on the cluster.
            try
            {
                await coordinator.CancelJob(_jobId).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
            }
            throw;
        }
        summary.Stop();
        return summary;
    }

    private async Task Submit(ICoordinatorGrain coordinator, IReadOnlyList<CompletionLine> lines, CancellationToken cancellation)
    {
        var chunk = new List<CompletionLine>();
        long bytes = 0;
        foreach (var line in lines)
        {
            if (chunk.Count > 0 && bytes + line.Body.Length > MaxSubmitBytes)
            {
                await coordinator.SubmitLines(_jobId, [.. chunk], _options.MaxConcurrent).WaitAsync(cancellation);
                (chunk, bytes) = ([], 0);
            }
            chunk.Add(line);
            bytes += line.Body.Length;
        }
        if (chunk.Count > 0) await coordinator.SubmitLines(_jobId, [.. chunk], _options.MaxConcurrent).WaitAsync(cancellation);
    }

    /// <summary>A result as its output line; a failure's message names the input line, as the reader's own errors do.</summary>
    private BatchOutputLine OutputLine(CompletionLineResult result) => result.Body is { } body
        ? BatchOutputLine.Success(result.Key, System.Text.Encoding.UTF8.GetBytes(body))
        : BatchOutputLine.Failure(result.LineNumber, result.Key, result.ErrorCode!, $"{_options.InputPath} line {result.LineNumber}: {result.ErrorMessage}");

    /// <summary>The input's lines for the progress display, counted by their newlines without parsing them.</summary>
    private static int CountLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var buffer = new byte[1 << 16];
        int lines = 0, read;
        byte last = (byte)'\n';
        while ((read = stream.Read(buffer)) > 0)
        {
            lines += buffer.AsSpan(0, read).Count((byte)'\n');
            last = buffer[read - 1];
        }
        return last == '\n' ? lines : lines + 1;
    }

    private static bool IsCoordinatorLoss(Exception e) => ClusterFailures.IsSiloLoss(e);
}
