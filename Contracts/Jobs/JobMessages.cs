using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Grains.Jobs;

/// <summary>A job's life, as OpenAI's batches name it.</summary>
public static class JobStatus
{
    /// <summary>Created; its lines are being uploaded. Nothing runs yet.</summary>
    public const string Validating = "validating";

    public const string InProgress = "in_progress";

    /// <summary>Every line has its result.</summary>
    public const string Completed = "completed";

    /// <summary>Cancelled: lines not finished then never will be; the results it had are kept.</summary>
    public const string Cancelled = "cancelled";

    /// <summary>It could not go on (its deployment is gone); the results it had are kept.</summary>
    public const string Failed = "failed";

    public static bool IsFinal(string status) => status is Completed or Cancelled or Failed;
}

/// <summary>What a job runs: the deployment its lines go to, where they came from, how many run at once.</summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.JobSpec")]
public sealed record JobSpec(
    [property: Id(0)] string DeploymentId,
    [property: Id(1)] string InputName,
    [property: Id(2)] int MaxConcurrent);

/// <summary>Where a job stands.</summary>
/// <param name="Lines">Lines uploaded; <paramref name="Completed"/> and <paramref name="Failed"/> of them have results.</param>
/// <param name="Seconds">From the first line handed to the deployment to the last result (or now).</param>
/// <param name="Host">The silo the job's grain runs on now (it moves when that silo is lost).</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.JobInfo")]
public sealed record JobInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] JobSpec Spec,
    [property: Id(2)] string Status,
    [property: Id(3)] int Lines,
    [property: Id(4)] int Completed,
    [property: Id(5)] int Failed,
    [property: Id(6)] DateTimeOffset CreatedAt,
    [property: Id(7)] DateTimeOffset? FinishedAt,
    [property: Id(8)] long PromptTokens,
    [property: Id(9)] long GeneratedTokens,
    [property: Id(10)] long TokensComputed,
    [property: Id(11)] long TokensSkipped,
    [property: Id(12)] long WireBytes,
    [property: Id(13)] double Seconds,
    [property: Id(14)] string? Error,
    [property: Id(15)] string Host)
{
    public int Done => Completed + Failed;
}

/// <summary>Results from a position of a job's result log on (the log is in the order lines finished).</summary>
/// <param name="Next">Where the next page starts.</param>
/// <param name="Finished">The job is final and the log ends at <paramref name="Next"/>.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.JobResultsPage")]
public sealed record JobResultsPage(
    [property: Id(0)] CompletionLineResult[] Results,
    [property: Id(1)] int Next,
    [property: Id(2)] bool Finished);
