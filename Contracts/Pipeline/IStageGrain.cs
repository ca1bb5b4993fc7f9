namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// One stage of a deployment: layers [a, b) of the model on the silo its key names
/// (<c>DEPLOYMENT/stage-I@NODE</c>), with a KV cache per sequence in flight.
/// </summary>
/// <remarks>
/// Only its deployment's coordinator and the other stages of its placement drive a stage: every call after
/// <see cref="Load"/> carries the token the setup gave it, and a call without it, or with another, fails with
/// <see cref="StageAccessDeniedException"/>. A stage that holds no weights answers <see cref="StageNotLoadedException"/> first.
/// </remarks>
[Alias("FtpCluster.IStageGrain")]
public interface IStageGrain : IGrainWithStringKey
{
    /// <summary>
    /// Loads the slice (once; a second call with the same setup, token included, is a no-op; one with another setup is refused).
    /// </summary>
    [Alias("Load")]
    Task<StageReport> Load(StageSetup setup);

    /// <summary>
    /// Runs this stage's blocks over the microbatch's rows (the request's and those deposited here for it)
    /// and hands the result on down the pipeline; the last stage's answer comes back up the chain.
    /// </summary>
    [Alias("Forward")]
    Task<StepResult> Forward(DeploymentToken token, StepRequest request);

    /// <summary>
    /// Rows an earlier stage sends straight here, skipping the stages between (none of their blocks
    /// computes them). Kept until this stage's <see cref="Forward"/> call for the same microbatch, which
    /// the sender makes happen only after this call has returned.
    /// </summary>
    [Alias("Deposit")]
    Task Deposit(DeploymentToken token, byte[] packet);

    /// <summary>
    /// Makes the KV caches of sequences about to start, each with room for its whole length (prompt and the tokens it
    /// may draw), taken at its first rows, so that they never grow. Refused past the stage's bounds, as a step would be.
    /// </summary>
    [Alias("Reserve")]
    Task Reserve(DeploymentToken token, long[] sequenceIds, int[] lengths);

    /// <summary>Frees the KV caches of finished or cancelled sequences.</summary>
    [Alias("Release")]
    Task Release(DeploymentToken token, long[] sequenceIds);

    /// <summary>Frees every sequence's caches and the rows deposited here: the coordinator activation that ran them is gone.</summary>
    [Alias("ReleaseAll")]
    Task ReleaseAll(DeploymentToken token);

    [Alias("Report")]
    Task<StageReport> Report(DeploymentToken token);

    /// <summary>Frees the weights and caches and lets the grain go (after a re-plan moved its layers).</summary>
    [Alias("Unload")]
    Task Unload(DeploymentToken token);
}
