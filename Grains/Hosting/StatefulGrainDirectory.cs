using System.Diagnostics.CodeAnalysis;
using FtpCluster.Grains.Jobs;
using FtpCluster.Grains.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Orleans.GrainDirectory;
using Orleans.Metadata;
using Orleans.Runtime.GrainDirectory;

namespace FtpCluster.Grains.Hosting;

/// <summary>
/// Under Redis clustering, the coordinator and job grains are registered in a Redis grain directory instead of Orleans'
/// in-cluster one.
/// </summary>
/// <remarks>
/// The in-cluster directory keeps each registration on one silo and, when that silo dies, deactivates every activation
/// it registered, wherever it runs. A coordinator deactivated so, in the middle of mending its plan after the same loss,
/// went on placing stages while its successor resumed the stored plan and placed them too. In Redis a registration
/// outlives any silo, so only the loss of a grain's own silo ends its activation. Stage grains stay in-cluster: they
/// are pinned to their silo and die with it anyway.
/// </remarks>
internal sealed class StatefulGrainDirectory(IServiceProvider services, GrainTypeResolver types) : IGrainDirectoryResolver
{
    public const string Name = "ftpcluster-stateful";

    private readonly HashSet<GrainType> _stateful = [types.GetGrainType(typeof(CoordinatorGrain)), types.GetGrainType(typeof(JobGrain))];

    public bool TryResolveGrainDirectory(GrainType grainType, GrainProperties? properties, [NotNullWhen(true)] out IGrainDirectory? grainDirectory)
    {
        grainDirectory = _stateful.Contains(grainType) ? services.GetRequiredKeyedService<IGrainDirectory>(Name) : null;
        return grainDirectory is not null;
    }
}
