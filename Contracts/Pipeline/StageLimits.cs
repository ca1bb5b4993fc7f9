namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// What one stage grain holds at most, whoever sends it work: past a bound the call is refused with
/// <see cref="StageLimitExceededException"/>, never an out-of-memory. The coordinator's own limits (a deployment's
/// <see cref="DeploymentRequest.MaxSequences"/> and KV-cache budget) are tighter, so a healthy deployment never meets these.
/// </summary>
public sealed class StageLimits
{
    /// <summary>Rows deposited here (<see cref="IStageGrain.Deposit"/>) and not yet taken by their microbatch's step: packets. Default 1,024.</summary>
    public int MaxQueuedDeposits { get; set; } = 1024;

    /// <summary>The same, in bytes. Default 512 MiB (sixteen packets of the default 32 MiB limit).</summary>
    public long MaxQueuedDepositBytes { get; set; } = 512L << 20;

    /// <summary>Sequences the stage holds KV caches for at once. Default 4,096 (a deployment admits 256 by default).</summary>
    public int MaxSequences { get; set; } = 4096;

    /// <summary>
    /// KV-cache bytes the stage may hold; a new sequence whose rows would take it past this is refused. Default 0: the
    /// silo's memory budget (<see cref="Hosting.FtpClusterSiloOptions.MemoryBudgetBytes"/>).
    /// </summary>
    public long MaxKvCacheBytes { get; set; }

    /// <exception cref="ArgumentException">A bound that is not positive (or, for the KV cache, negative); the message names it.</exception>
    public void Validate()
    {
        if (MaxQueuedDeposits < 1) throw new ArgumentException($"{nameof(MaxQueuedDeposits)} (--max-queued-deposits) must be at least 1, got {MaxQueuedDeposits}");
        if (MaxQueuedDepositBytes < 1) throw new ArgumentException($"{nameof(MaxQueuedDepositBytes)} (--max-queued-deposit-mb) must be at least 1 byte, got {MaxQueuedDepositBytes}");
        if (MaxSequences < 1) throw new ArgumentException($"{nameof(MaxSequences)} (--max-sequences) must be at least 1, got {MaxSequences}");
        if (MaxKvCacheBytes < 0) throw new ArgumentException($"{nameof(MaxKvCacheBytes)} (--max-kv-cache-mb) must be 0 (the silo's memory budget) or more, got {MaxKvCacheBytes}");
    }
}

/// <summary>A stage refused work that would take it past one of its <see cref="StageLimits"/>; the message has the numbers.</summary>
[GenerateSerializer]
[Alias("FtpCluster.StageLimitExceededException")]
public sealed class StageLimitExceededException : Exception
{
    public StageLimitExceededException()
    {
    }

    public StageLimitExceededException(string message)
        : base(message)
    {
    }

    public StageLimitExceededException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
