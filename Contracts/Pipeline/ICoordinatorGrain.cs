namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// Drives requests through one deployment's stages (key: the deployment id). Lives inside the
/// cluster, so a stage on a silo that died fails its caller at once instead of after a client timeout.
/// </summary>
[Alias("FtpCluster.ICoordinatorGrain")]
public interface ICoordinatorGrain : IGrainWithStringKey
{
    /// <summary>Plans the model's layers over the silos up and loads every stage.</summary>
    [Alias("Deploy")]
    Task<DeployedStage[]> Deploy(DeploymentRequest request);

    /// <summary>One generation, start to end, in one call: for short ones (a job's lines go through <see cref="SubmitLines"/>).</summary>
    [Alias("Generate")]
    Task<GenerationReply> Generate(GenerationRequest request);

    /// <summary>
    /// Queues a job's request lines (a line whose key is already queued or running is not queued again) and returns
    /// at once with how many were new; at most <paramref name="maxConcurrent"/> of the job's lines run at a time.
    /// </summary>
    [Alias("SubmitLines")]
    Task<int> SubmitLines(string job, CompletionLine[] lines, int maxConcurrent);

    /// <summary>
    /// The job's lines finished since its last collection, waiting up to <paramref name="maxWait"/> (at most 10 s) for
    /// one, and how many of its lines this coordinator still holds.
    /// </summary>
    [Alias("CollectLines")]
    Task<CollectedLines> CollectLines(string job, TimeSpan maxWait);

    /// <summary>Stops a job's lines here: waiting ones never start, running ones leave their microbatch within a step.</summary>
    [Alias("CancelJob")]
    Task CancelJob(string job);

    /// <summary>
    /// Starts one online request (an HTTP call's; <paramref name="request"/>'s key is its request id, unique in the cluster):
    /// checks its body against the deployment and queues it, or refuses it at once — a body that cannot be served, or
    /// more than <paramref name="maxWaiting"/> sequences already waiting for admission. Its text comes through
    /// <see cref="PollCompletion"/>; a request nobody polls for <c>OnlineCompletions.IdleTimeout</c> is cancelled.
    /// </summary>
    [Alias("StartCompletion")]
    Task<CompletionRefusal?> StartCompletion(CompletionLine request, int maxWaiting);

    /// <summary>
    /// The text an online request has generated since the last poll, waiting up to <paramref name="maxWait"/> (at most
    /// 10 s) for some; once it has finished, the rest of its text and its result (and the request is forgotten).
    /// </summary>
    [Alias("PollCompletion")]
    Task<CompletionProgress> PollCompletion(string requestId, TimeSpan maxWait);

    /// <summary>Stops an online request (its client went away): its sequence leaves its microbatch within a step.</summary>
    [Alias("CancelCompletion")]
    Task CancelCompletion(string requestId);

    /// <summary>Logits [ids.Length, vocab] as float32 little-endian bytes, and the vocabulary size.</summary>
    [Alias("Score")]
    Task<StepResult> Score(int[] ids);

    /// <summary>The stages of the current plan (it changes when a silo dies and the layers move).</summary>
    [Alias("Stages")]
    Task<DeployedStage[]> Stages();

    /// <summary>Each stage's own report: where it runs, its layers, the bytes it has sent on.</summary>
    [Alias("Reports")]
    Task<StageReport[]> Reports();

    /// <summary>The deployment, its stages' memory and its use; null when it is not deployed (never, or unloaded).</summary>
    [Alias("Describe")]
    Task<DeploymentInfo?> Describe();

    /// <summary>
    /// Frees the deployment: what runs on it stops within a step (its jobs' lines fail), its stages free their weights
    /// and caches, and its stored plan is removed. A later <see cref="Deploy"/> loads it again.
    /// </summary>
    [Alias("Unload")]
    Task Unload();

    /// <summary>The node this coordinator runs on.</summary>
    [Alias("NodeName")]
    Task<string> NodeName();
}
