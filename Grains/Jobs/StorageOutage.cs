namespace FtpCluster.Grains.Jobs;

/// <summary>
/// Failures that mean grain storage is out of reach for a while (Redis restarting or failing over) rather than broken:
/// the write may succeed once it is back. Matched by type name, also where the exception crossed a grain call as
/// Orleans' stand-in for a type it could not serialize.
/// </summary>
internal static class StorageOutage
{
    private const string RedisClientNamespace = "StackExchange.Redis.";
    private const string RedisStorageException = "Orleans.Persistence.Redis.RedisStorageException";

    public static bool Is(Exception e) => e switch
    {
        Orleans.Serialization.UnavailableExceptionFallbackException fallback when IsOutageType(fallback.ExceptionType) => true,
        _ when IsOutageType(e.GetType().FullName) => true,
        AggregateException aggregate => aggregate.InnerExceptions.Any(Is),
        _ => e.InnerException is { } inner && Is(inner),
    };

    private static bool IsOutageType(string? typeName) => typeName is not null
        && (typeName.StartsWith(RedisClientNamespace, StringComparison.Ordinal) || typeName == RedisStorageException);
}
