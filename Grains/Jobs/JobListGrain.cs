using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Jobs;

/// <summary>The cluster's jobs, newest last, for <c>ftpcluster jobs list</c> (one grain, key 0).</summary>
[Alias("FtpCluster.IJobListGrain")]
public interface IJobListGrain : IGrainWithIntegerKey
{
    [Alias("Add")]
    Task Add(string jobId);

    /// <summary>The ids of the newest jobs, at most <see cref="JobLimits.ListedJobs"/>, oldest first.</summary>
    [Alias("Ids")]
    Task<string[]> Ids();
}

[GenerateSerializer]
[Alias("FtpCluster.JobListRecord")]
public sealed class JobListRecord
{
    [Id(0)] public List<string> Ids { get; set; } = [];
}

internal sealed class JobListGrain(
    [PersistentState("jobs", FtpClusterSiloBuilderExtensions.JobStorage)] IPersistentState<JobListRecord> record)
    : Grain, IJobListGrain
{
    public async Task Add(string jobId)
    {
        if (record.State.Ids.Contains(jobId)) return;
        record.State.Ids.Add(jobId);
        if (record.State.Ids.Count > JobLimits.ListedJobs) record.State.Ids.RemoveRange(0, record.State.Ids.Count - JobLimits.ListedJobs);
        await record.WriteStateAsync();
    }

    public Task<string[]> Ids() => Task.FromResult(record.State.Ids.ToArray());
}
