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
        var before = record.State.Lines;
        record.State.Lines = [.. before, .. lines];
        try
        {
            await record.WriteStateAsync();
        }
        catch
        {
            // What failed to be stored is not kept: a reader must never see what a restart would lose.
            record.State.Lines = before;
            throw;
        }
    }

    public Task<CompletionLine[]> Read() => Task.FromResult(record.State.Lines);
}

internal sealed class JobResultsGrain(
    [PersistentState("results", FtpClusterSiloBuilderExtensions.JobStorage)] IPersistentState<JobResultsRecord> record)
    : Grain, IJobResultsGrain
{
    public async Task Append(CompletionLineResult[] results)
    {
        var before = record.State.Results;
        record.State.Results = [.. before, .. results];
        try
        {
            await record.WriteStateAsync();
        }
        catch
        {
            // What failed to be stored is not kept: a reader must never see what a restart would lose.
            record.State.Results = before;
            throw;
        }
    }

    public Task<CompletionLineResult[]> Read() => Task.FromResult(record.State.Results);
}
