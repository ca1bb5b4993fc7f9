using FtpCluster.Grains.Hosting;
using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Grains.Jobs;

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
