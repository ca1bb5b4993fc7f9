using FtpCluster.Grains.Hosting;

namespace FtpCluster.Grains.Pipeline;

/// <summary>Which failures of a grain call mean a silo or a stage is gone, as opposed to a bad request.</summary>
public static class ClusterFailures
{
    /// <summary>Failures that a new placement mends: a silo gone, or a stage that lost its weights.</summary>
    public static bool IsStageLoss(Exception e) => IsSiloLoss(e) || e is StageNotLoadedException
        || e.InnerException is { } inner && IsStageLoss(inner);

    /// <summary>
    /// The namespace of the resilience library under Orleans' placement and grain directory. Its exceptions must be
    /// serializable (silos and clients list it in Orleans' <c>ExceptionSerializationOptions</c>): while a silo is cut
    /// off, a placement that gives up throws its <see cref="RetriesTimedOut"/>, and a reply carrying a type Orleans may
    /// not serialize reaches the caller as a <c>CodecNotFoundException</c> that says nothing of the silo.
    /// </summary>
    public const string OrleansRetriesNamespace = "Polly";

    /// <summary>What <see cref="OrleansRetriesNamespace"/> throws when its retries ran out of time (a silo out of reach).</summary>
    private const string RetriesTimedOut = "TimeoutRejectedException";

    /// <summary>Failures that mean a silo is gone (or unreachable): the call may succeed on another activation.</summary>
    public static bool IsSiloLoss(Exception e) => e switch
    {
        SiloUnavailableException or OrleansMessageRejectionException or NodeNotInClusterException or TimeoutException => true,
        _ when e.GetType().Name is "ConnectionFailedException" or RetriesTimedOut => true,
        Orleans.Serialization.UnavailableExceptionFallbackException fallback when fallback.ExceptionType?.EndsWith("." + RetriesTimedOut, StringComparison.Ordinal) == true => true,
        AggregateException { InnerExceptions.Count: 1 } a => IsSiloLoss(a.InnerExceptions[0]),
        _ => e.InnerException is { } inner && IsSiloLoss(inner),
    };
}
