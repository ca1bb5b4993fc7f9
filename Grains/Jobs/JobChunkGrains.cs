using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Grains.Jobs;

/// <summary>
/// One piece of a job's input, kept where the cluster keeps state (key <c>JOB/lines/N</c>). A job's lines live in
/// pieces of at most <see cref="JobLimits.ChunkBytes"/>, so no grain call or stored record carries a whole file.
/// </summary>
[Alias("FtpCluster.IJobLinesGrain")]
public interface IJobLinesGrain : IGrainWithStringKey
{
    [Alias("Append")]
    Task Append(CompletionLine[] lines);

    [Alias("Read")]
    Task<CompletionLine[]> Read();
}

/// <summary>One piece of a job's results, in the order they finished (key <c>JOB/results/N</c>).</summary>
[Alias("FtpCluster.IJobResultsGrain")]
public interface IJobResultsGrain : IGrainWithStringKey
{
    [Alias("Append")]
    Task Append(CompletionLineResult[] results);

    [Alias("Read")]
    Task<CompletionLineResult[]> Read();
}

[GenerateSerializer]
[Alias("FtpCluster.JobLinesRecord")]
public sealed class JobLinesRecord
{
    [Id(0)] public CompletionLine[] Lines { get; set; } = [];
}

[GenerateSerializer]
[Alias("FtpCluster.JobResultsRecord")]
public sealed class JobResultsRecord
{
    [Id(0)] public CompletionLineResult[] Results { get; set; } = [];
}

internal sealed class JobLinesGrain(
    [PersistentState("lines", FtpClusterSiloBuilderExtensions.JobStorage)] IPersistentState<JobLinesRecord> record)
    : Grain, IJobLinesGrain
{
    public async Task Append(CompletionLine[] lines)
    {
        record.State.Lines = [.. record.State.Lines, .. lines];
        await record.WriteStateAsync();
    }

    public Task<CompletionLine[]> Read() => Task.FromResult(record.State.Lines);
}

internal sealed class JobResultsGrain(
    [PersistentState("results", FtpClusterSiloBuilderExtensions.JobStorage)] IPersistentState<JobResultsRecord> record)
    : Grain, IJobResultsGrain
{
    public async Task Append(CompletionLineResult[] results)
    {
        record.State.Results = [.. record.State.Results, .. results];
        await record.WriteStateAsync();
    }

    public Task<CompletionLineResult[]> Read() => Task.FromResult(record.State.Results);
}

/// <summary>The bounds a job's client can push against; past each, a refusal.</summary>
public static class JobLimits
{
    /// <summary>Requests per job, as OpenAI's batch files.</summary>
    public const int MaxLines = 50_000;

    /// <summary>Request body bytes per job, as OpenAI's 200 MB input files.</summary>
    public const long MaxInputBytes = 200_000_000;

    /// <summary>Bytes of lines (or results) one stored piece holds at most; one line is at most 1 MiB.</summary>
    public const int ChunkBytes = 4 << 20;

    /// <summary>Lines (or results) one stored piece holds at most.</summary>
    public const int ChunkLines = 1024;

    /// <summary>Lines one job may run at once (its lines queued on the coordinator stay under <see cref="Pipeline.JobLines.MaxQueuedPerJob"/>).</summary>
    public const int MaxConcurrent = 1024;

    /// <summary>Jobs <c>jobs list</c> remembers; older ones are forgotten by the list (not deleted).</summary>
    public const int ListedJobs = 1000;
}
