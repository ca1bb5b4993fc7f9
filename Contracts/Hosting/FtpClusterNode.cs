using System.Globalization;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// One FtpCluster silo as the rest of the cluster sees it: what a planner needs to give it layers and
/// what a placement director needs to find it.
/// </summary>
/// <param name="Capacity">Relative speed (see <see cref="FtpClusterSiloOptions.Capacity"/>).</param>
[GenerateSerializer, Immutable]
[Alias("FtpCluster.FtpClusterNode")]
public sealed record FtpClusterNode(
    [property: Id(0)] string NodeName,
    [property: Id(1)] SiloAddress Silo,
    [property: Id(2)] string Device,
    [property: Id(3)] long MemoryBudgetBytes,
    [property: Id(4)] double Capacity)
{
    // Orleans silo metadata is a string map shared by every library in the silo; these keys are ours.
    public const string NodeNameKey = "ftpcluster.node";
    public const string DeviceKey = "ftpcluster.device";
    public const string MemoryBudgetBytesKey = "ftpcluster.memory-budget-bytes";
    public const string CapacityKey = "ftpcluster.capacity";

    public override string ToString() =>
        $"{NodeName} ({Silo.Endpoint}, {Device}, {MemoryBudgetBytes / (1024 * 1024)} MiB, capacity {Capacity.ToString(CultureInfo.InvariantCulture)})";

    /// <summary>The metadata a silo with <paramref name="options"/> publishes.</summary>
    public static Dictionary<string, string> ToMetadata(FtpClusterSiloOptions options) => new()
    {
        [NodeNameKey] = options.NodeName,
        [DeviceKey] = options.Device,
        [MemoryBudgetBytesKey] = options.MemoryBudgetBytes.ToString(CultureInfo.InvariantCulture),
        [CapacityKey] = options.Capacity.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>
    /// Reads a silo's published metadata; null when it has none of ours (a silo whose metadata has not
    /// reached this silo's cache yet, or a silo that is not an FtpCluster silo).
    /// </summary>
    public static FtpClusterNode? FromMetadata(SiloAddress silo, IReadOnlyDictionary<string, string> metadata)
    {
        if (!metadata.TryGetValue(NodeNameKey, out var node)) return null;
        return new FtpClusterNode(
            node,
            silo,
            metadata.GetValueOrDefault(DeviceKey, "unknown"),
            long.TryParse(metadata.GetValueOrDefault(MemoryBudgetBytesKey), NumberStyles.None, CultureInfo.InvariantCulture, out var budget) ? budget : 0,
            double.TryParse(metadata.GetValueOrDefault(CapacityKey), NumberStyles.Float, CultureInfo.InvariantCulture, out var capacity) ? capacity : 1.0);
    }
}
