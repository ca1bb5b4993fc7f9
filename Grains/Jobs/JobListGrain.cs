using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Jobs;

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
