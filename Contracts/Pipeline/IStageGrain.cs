namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// One stage of a deployment: layers [a, b) of the model on the silo its key names
/// (<c>DEPLOYMENT/stage-I@NODE</c>), with a KV cache per sequence in flight.
/// </summary>
[Alias("FtpCluster.IStageGrain")]
public interface IStageGrain : IGrainWithStringKey
{
    /// <summary>Loads the slice (once; a second call with the same setup is a no-op).</summary>
    [Alias("Load")]
    Task<StageReport> Load(StageSetup setup);

    /// <summary>
    /// Runs this stage's blocks over the microbatch's rows (the request's and those deposited here for it)
    /// and hands the result on down the pipeline; the last stage's answer comes back up the chain.
    /// </summary>
    [Alias("Forward")]
    Task<StepResult> Forward(StepRequest request);

    /// <summary>
    /// Rows an earlier stage sends straight here, skipping the stages between (none of their blocks
    /// computes them). Kept until this stage's <see cref="Forward"/> call for the same microbatch, which
    /// the sender makes happen only after this call has returned.
    /// </summary>
    [Alias("Deposit")]
    Task Deposit(byte[] packet);

    /// <summary>Frees the KV caches of finished or cancelled sequences.</summary>
    [Alias("Release")]
    Task Release(long[] sequenceIds);

    /// <summary>Frees every sequence's caches: the coordinator activation that ran them is gone.</summary>
    [Alias("ReleaseAll")]
    Task ReleaseAll();

    [Alias("Report")]
    Task<StageReport> Report();

    /// <summary>Frees the weights and caches and lets the grain go (after a re-plan moved its layers).</summary>
    [Alias("Unload")]
    Task Unload();
}
