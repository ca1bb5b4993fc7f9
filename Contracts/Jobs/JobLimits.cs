namespace FtpCluster.Grains.Jobs;

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

    /// <summary>Lines one job may run at once (its lines queued on the coordinator stay under <c>JobLines.MaxQueuedPerJob</c>).</summary>
    public const int MaxConcurrent = 1024;

    /// <summary>Jobs <c>jobs list</c> remembers; older ones are forgotten by the list (not deleted).</summary>
    public const int ListedJobs = 1000;
}
