using System.Collections.Concurrent;
using FtpCluster.Grains.Cluster;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// The stages whose weights this silo holds now, whatever deployment or placement they belong to: what
/// <see cref="ISiloInfoGrain"/> reports, so an operator (or a test) sees memory that no deployment uses any more.
/// </summary>
public sealed class LoadedStages
{
    private readonly ConcurrentDictionary<string, LoadedStage> _stages = new(StringComparer.Ordinal);

    /// <summary>Counts a stage from the moment its weights are in memory until <see cref="Remove"/>.</summary>
    public void Add(LoadedStage stage) => _stages[stage.GrainKey] = stage;

    /// <summary>After the stage has freed its weights.</summary>
    public void Remove(string grainKey) => _stages.TryRemove(grainKey, out _);

    /// <summary>Ordered by grain key, so reports compare.</summary>
    public LoadedStage[] Snapshot() => [.. _stages.Values.OrderBy(s => s.GrainKey, StringComparer.Ordinal)];
}
