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
