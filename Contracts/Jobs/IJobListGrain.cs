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
