using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace FtpCluster.Grains.Wire;

/// <summary>What one stage boundary carried: packets and their encoded bytes.</summary>
public sealed record BoundaryTraffic(int SourceStage, int TargetStage, long Packets, long Bytes);

/// <summary>
/// Counts the bytes and packets sent across each stage boundary; safe to use from many threads. Every
/// record also goes to the <c>ftpcluster.wire.bytes</c> counter of the <c>FtpCluster</c> meter, tagged
/// with source, target and encoding, for OpenTelemetry.
/// </summary>
public sealed class WireTraffic
{
    public const string MeterName = "FtpCluster";
    public const string BytesCounterName = "ftpcluster.wire.bytes";

    // One counter for the process-wide meter, however many stages keep a WireTraffic: exporters then see a
    // single instrument whose series the tags tell apart.
    private static readonly Counter<long> SharedBytesCounter = CreateBytesCounter(new Meter(MeterName));

    private readonly Counter<long> _bytesCounter;
    // A lock rather than per-field atomics: a snapshot or reset then never sees a packet's bytes without
    // its count, and packets are microseconds apart, so the lock is never contended for long.
    private readonly Lock _gate = new();
    private readonly Dictionary<(int Source, int Target), (long Packets, long Bytes)> _boundaries = [];

    /// <param name="meter">The meter to publish through; null: a process-wide <c>FtpCluster</c> meter.</param>
    public WireTraffic(Meter? meter = null)
    {
        _bytesCounter = meter is null ? SharedBytesCounter : CreateBytesCounter(meter);
    }

    private static Counter<long> CreateBytesCounter(Meter meter) =>
        meter.CreateCounter<long>(BytesCounterName, unit: "By",
            description: "Encoded activation bytes sent from one pipeline stage to the next");

    public void Record(int sourceStage, int targetStage, WireEncoding encoding, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_gate)
        {
            var key = (sourceStage, targetStage);
            var (packets, total) = _boundaries.GetValueOrDefault(key);
            _boundaries[key] = (packets + 1, total + bytes);
        }
        _bytesCounter.Add(bytes, new TagList
        {
            { "source", sourceStage },
            { "target", targetStage },
            { "encoding", encoding.CliWord() },
        });
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
