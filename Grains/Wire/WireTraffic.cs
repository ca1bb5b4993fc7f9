namespace FtpCluster.Grains.Wire;

/// <summary>What one stage boundary carried: packets and their encoded bytes.</summary>
public sealed record BoundaryTraffic(int SourceStage, int TargetStage, long Packets, long Bytes);

/// <summary>
/// Counts the bytes and packets sent across each stage boundary, for a stage's report; safe to use from many threads.
/// (The <c>ftpcluster.wire.bytes</c> metric is <see cref="Telemetry.FtpClusterMetrics"/>'s: cumulative, where these
/// counts can start again.)
/// </summary>
public sealed class WireTraffic
{
    // A lock rather than per-field atomics: a snapshot or reset then never sees a packet's bytes without
    // its count, and packets are microseconds apart, so the lock is never contended for long.
    private readonly Lock _gate = new();
    private readonly Dictionary<(int Source, int Target), (long Packets, long Bytes)> _boundaries = [];

    public void Record(int sourceStage, int targetStage, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_gate)
        {
            var key = (sourceStage, targetStage);
            var (packets, total) = _boundaries.GetValueOrDefault(key);
            _boundaries[key] = (packets + 1, total + bytes);
        }
    }

    /// <summary>Every boundary that carried a packet since the last reset, ordered by source then target stage.</summary>
    public IReadOnlyList<BoundaryTraffic> Snapshot()
    {
        lock (_gate)
        {
            return _boundaries
                .Select(b => new BoundaryTraffic(b.Key.Source, b.Key.Target, b.Value.Packets, b.Value.Bytes))
                .OrderBy(b => b.SourceStage).ThenBy(b => b.TargetStage)
                .ToArray();
        }
    }

    /// <summary>Starts the per-boundary counts again from zero; the metrics counter, being cumulative, does not.</summary>
    public void Reset()
    {
        lock (_gate)
            _boundaries.Clear();
    }
}
