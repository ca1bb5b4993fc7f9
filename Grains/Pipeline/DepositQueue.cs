namespace FtpCluster.Grains.Pipeline;

/// <summary>
/// The packets deposited at one stage (<see cref="IStageGrain.Deposit"/>) until their microbatch's step takes them,
/// bounded in count and bytes by <see cref="StageLimits"/>.
/// </summary>
internal sealed class DepositQueue(string stageKey, StageLimits limits)
{
    private readonly Dictionary<long, List<byte[]>> _byMicrobatch = [];

    /// <summary>Packets queued.</summary>
    public int Count { get; private set; }

    /// <summary>Their bytes.</summary>
    public long Bytes { get; private set; }

    /// <exception cref="StageLimitExceededException">The packet would take the queue past its count or byte bound; nothing was queued.</exception>
    public void Add(long microbatch, byte[] packet)
    {
        if (Count + 1 > limits.MaxQueuedDeposits || Bytes + packet.Length > limits.MaxQueuedDepositBytes)
            throw new StageLimitExceededException(
                $"stage {stageKey} refused a deposit of {packet.Length} bytes for microbatch {microbatch}: it holds {Count} deposited packets " +
                $"({Bytes} bytes) not yet taken, and its limits are {limits.MaxQueuedDeposits} packets and {limits.MaxQueuedDepositBytes} bytes");
        if (!_byMicrobatch.TryGetValue(microbatch, out var packets))
            _byMicrobatch[microbatch] = packets = [];
        packets.Add(packet);
        Count++;
        Bytes += packet.Length;
    }

    /// <summary>The microbatch's packets, in the order they came, now out of the queue; none: empty.</summary>
    public List<byte[]> Take(long microbatch)
    {
        if (!_byMicrobatch.Remove(microbatch, out var packets)) return [];
        Count -= packets.Count;
        Bytes -= packets.Sum(p => (long)p.Length);
        return packets;
    }

    /// <summary>Drops every packet (their steps will never come: the coordinator that sent them is gone).</summary>
    public void Clear()
    {
        _byMicrobatch.Clear();
        (Count, Bytes) = (0, 0);
    }
}
