using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Grains.Jobs;

/// <summary>
/// A batch job (key: its id): its lines, uploaded in pieces, run through one deployment's coordinator, and its
/// results kept in the order they finish. It lives in the cluster, so its client may leave and come back, and its
/// state is where the cluster keeps state, so it goes on after the silo that hosted it is lost.
/// </summary>
[Alias("FtpCluster.IJobGrain")]
public interface IJobGrain : IGrainWithStringKey
{
    /// <summary>Makes the job (status validating); the same spec again is a no-op, another one is refused.</summary>
    [Alias("Create")]
    Task<JobInfo> Create(JobSpec spec);

    /// <summary>Adds lines while the job is validating; returns the job's line count. Past <see cref="JobLimits"/>: refused.</summary>
    [Alias("AddLines")]
    Task<int> AddLines(CompletionLine[] lines);

    /// <summary>Starts running the lines (in_progress); a started job answers as it stands.</summary>
    [Alias("Start")]
    Task<JobInfo> Start();

    [Alias("Info")]
    Task<JobInfo> Info();

    /// <summary>Results from position <paramref name="from"/> of the result log on, up to about <paramref name="maxBytes"/> of bodies.</summary>
    [Alias("Results")]
    Task<JobResultsPage> Results(int from, int maxBytes);

    /// <summary>Stops the job within a step of its running lines; the results it had are kept.</summary>
    [Alias("Cancel")]
    Task<JobInfo> Cancel();
}
