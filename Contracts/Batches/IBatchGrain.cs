namespace FtpCluster.Grains.Batches;

/// <summary>
/// One OpenAI batch (key: its id, <c>batch_…</c>, which is also the id of the job that runs it, so
/// <c>ftpcluster jobs</c> sees it): reads its input file into a job's lines, follows the job, and when the job ends
/// writes the output and error files (status <c>finalizing</c>, then <c>completed</c> / <c>cancelled</c> /
/// <c>expired</c>). Its state is where the cluster keeps state, and a reminder brings it back on a survivor.
/// </summary>
[Alias("FtpCluster.IBatchGrain")]
public interface IBatchGrain : IGrainWithStringKey
{
    /// <summary>Makes the batch (status <c>validating</c>) and starts reading its input file; the same spec again answers as it stands.</summary>
    [Alias("Create")]
    Task<BatchInfo> Create(BatchSpec spec);

    /// <summary>The batch as it stands, its request counts live; null when there is no such batch.</summary>
    [Alias("Info")]
    Task<BatchInfo?> Info();

    /// <summary>Cancels it (<c>cancelling</c>, then <c>cancelled</c> once its files are written).</summary>
    /// <exception cref="InvalidOperationException">The batch has ended (completed, failed, expired or cancelled): nothing to cancel.</exception>
    [Alias("Cancel")]
    Task<BatchInfo> Cancel();
}

/// <summary>What <c>POST /v1/batches</c> asked for, checked by the endpoint.</summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.BatchSpec")]
public sealed record BatchSpec(
    [property: Id(0)] string InputFileId,
    [property: Id(1)] string Endpoint,
    [property: Id(2)] string CompletionWindow,
    [property: Id(3)] Dictionary<string, string>? Metadata);

/// <summary>A batch's life, as OpenAI names it.</summary>
public static class BatchStatus
{
    public const string Validating = "validating";
    public const string InProgress = "in_progress";
    public const string Finalizing = "finalizing";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelling = "cancelling";
    public const string Cancelled = "cancelled";
    public const string Expired = "expired";

    public static bool IsFinal(string status) => status is Completed or Failed or Cancelled or Expired;
}

/// <summary>Why a batch failed as a whole (OpenAI's <c>errors.data[]</c>): its input file is gone, no deployment serves its model.</summary>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.BatchError")]
public sealed record BatchError(
    [property: Id(0)] string Code,
    [property: Id(1)] string Message,
    [property: Id(2)] string? Param,
    [property: Id(3)] int? Line);

/// <summary>OpenAI's batch object.</summary>
/// <param name="Total">Requests in the input file; <paramref name="Completed"/> and <paramref name="Failed"/> of them have ended.</param>
/// <param name="DeploymentId">The deployment its lines run on, once known.</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.BatchInfo")]
public sealed record BatchInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] BatchSpec Spec,
    [property: Id(2)] string Status,
    [property: Id(3)] string? OutputFileId,
    [property: Id(4)] string? ErrorFileId,
    [property: Id(5)] DateTimeOffset CreatedAt,
    [property: Id(6)] DateTimeOffset? InProgressAt,
    [property: Id(7)] DateTimeOffset ExpiresAt,
    [property: Id(8)] DateTimeOffset? FinalizingAt,
    [property: Id(9)] DateTimeOffset? CompletedAt,
    [property: Id(10)] DateTimeOffset? FailedAt,
    [property: Id(11)] DateTimeOffset? ExpiredAt,
    [property: Id(12)] DateTimeOffset? CancellingAt,
    [property: Id(13)] DateTimeOffset? CancelledAt,
    [property: Id(14)] int Total,
    [property: Id(15)] int Completed,
    [property: Id(16)] int Failed,
    [property: Id(17)] BatchError[] Errors,
    [property: Id(18)] string? DeploymentId);
