using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Pipeline;

/// <summary>Which failures of a grain call mean a silo or a stage is gone, as opposed to a bad request.</summary>
public static class ClusterFailures
{
    /// <summary>Failures that a new placement mends: a silo gone, or a stage that lost its weights.</summary>
    public static bool IsStageLoss(Exception e) => IsSiloLoss(e) || e is StageNotLoadedException
        || e.InnerException is { } inner && IsStageLoss(inner);

    /// <summary>Failures that mean a silo is gone (or unreachable): the call may succeed on another activation.</summary>
    public static bool IsSiloLoss(Exception e) => e switch
    {
        SiloUnavailableException or OrleansMessageRejectionException or NodeNotInClusterException or TimeoutException => true,
        _ when e.GetType().Name == "ConnectionFailedException" => true,
        AggregateException { InnerExceptions.Count: 1 } a => IsSiloLoss(a.InnerExceptions[0]),
        _ => e.InnerException is { } inner && IsSiloLoss(inner),
    };
}
