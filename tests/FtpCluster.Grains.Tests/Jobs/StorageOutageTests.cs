using FtpCluster.Grains.Jobs;
using Orleans.Storage;
using StackExchange.Redis;

namespace FtpCluster.Grains.Tests.Jobs;

/// <summary>Which storage failures a job rides out (Redis out of reach for a while) and which end it.</summary>
public sealed class StorageOutageTests
{
    [Fact]
    public void A_redis_connection_failure_behind_the_storage_bridge_is_an_outage()
    {
        var lost = new RedisConnectionException(ConnectionFailureType.SocketClosed, "no connection became available");
        Assert.True(StorageOutage.Is(new OrleansException("Error from storage provider RedisGrainStorage.results during WriteStateAsync", lost)));
    }

    [Fact]
    public void A_redis_timeout_is_an_outage()
    {
        Assert.True(StorageOutage.Is(new AggregateException(new RedisTimeoutException("timed out in the backlog", CommandStatus.WaitingToBeSent))));
    }

    [Fact]
    public void A_conflicting_write_and_other_failures_are_not()
    {
        Assert.False(StorageOutage.Is(new InconsistentStateException("the stored version changed")));
        Assert.False(StorageOutage.Is(new InvalidOperationException("job x does not exist", new ArgumentException("bad"))));
        Assert.False(StorageOutage.Is(new TimeoutException("a grain call timed out")));
    }
}
