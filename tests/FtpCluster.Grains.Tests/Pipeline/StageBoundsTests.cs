using FtpCluster.Grains.Pipeline;

namespace FtpCluster.Grains.Tests.Pipeline;

/// <summary>A stage's bounds: queued deposits (count and bytes), sequences and KV-cache bytes, each refused past it with the numbers.</summary>
public sealed class StageBoundsTests
{
    private const string Stage = "d/0/stage-1@a";

    [Fact]
    public void Deposits_past_the_count_or_byte_bound_are_refused_and_a_taken_microbatch_frees_its_room()
    {
        var queue = new DepositQueue(Stage, new StageLimits { MaxQueuedDeposits = 3, MaxQueuedDepositBytes = 1000 });
        queue.Add(1, new byte[100]);
        queue.Add(1, new byte[200]);
        queue.Add(2, new byte[300]);

        var error = Assert.Throws<StageLimitExceededException>(() => queue.Add(3, new byte[1]));
        Assert.Equal($"stage {Stage} refused a deposit of 1 bytes for microbatch 3: it holds 3 deposited packets (600 bytes) not yet taken, " +
            "and its limits are 3 packets and 1000 bytes", error.Message);
        Assert.Equal((3, 600L), (queue.Count, queue.Bytes));

        Assert.Equal([100, 200], queue.Take(1).Select(p => p.Length));
        Assert.Empty(queue.Take(1));
        Assert.Equal((1, 300L), (queue.Count, queue.Bytes));
        queue.Add(3, new byte[700]);
        error = Assert.Throws<StageLimitExceededException>(() => queue.Add(4, new byte[1]));
        Assert.Contains("(1000 bytes)", error.Message);

        queue.Clear();
        Assert.Equal((0, 0L), (queue.Count, queue.Bytes));
        Assert.Empty(queue.Take(3));
    }

    [Fact]
    public void New_sequences_past_the_sequence_bound_are_refused_and_held_ones_pass()
    {
        var limits = new StageLimits { MaxSequences = 4 };
        var holdings = new StageHoldings(id => id < 3, Sequences: 3, KvCacheBytes: 0, KvBytesPerRow: 10);

        // Rows of held sequences only, and one new sequence: within the bound.
        SequenceAdmission.Check(Stage, [0, 1, 2, 2], holdings, limits, kvBudgetBytes: 1 << 20);
        SequenceAdmission.Check(Stage, [0, 7, 7, 7], holdings, limits, kvBudgetBytes: 1 << 20);

        var error = Assert.Throws<StageLimitExceededException>(() => SequenceAdmission.Check(Stage, [0, 7, 8], holdings, limits, 1 << 20));
        Assert.Equal($"stage {Stage} refused 2 new sequences: it holds 3, and its limit is 4", error.Message);
    }

    [Fact]
    public void A_new_sequence_whose_rows_room_would_pass_the_kv_cache_budget_is_refused_with_the_numbers()
    {
        var limits = new StageLimits();
        var holdings = new StageHoldings(id => id == 1, Sequences: 1, KvCacheBytes: 800, KvBytesPerRow: 10);

        // 10 rows take a cache's first 16 rows of room: 160 bytes.
        SequenceAdmission.Check(Stage, [2, 2, 2, 2, 2, 2, 2, 2, 2, 2], holdings, limits, kvBudgetBytes: 960);
        // A held sequence's growth is the coordinator's to budget, not a refusal here.
        SequenceAdmission.Check(Stage, [.. Enumerable.Repeat(1L, 500)], holdings, limits, kvBudgetBytes: 960);

        var error = Assert.Throws<StageLimitExceededException>(() => SequenceAdmission.Check(Stage, [1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], holdings, limits, 1000));
        Assert.Equal($"stage {Stage} refused 2 new sequences: their 11 rows need 320 bytes of KV-cache room, it holds 800, and its budget is 1000", error.Message);
        // 17 rows' entries would fit in 170 bytes; the room they take (32 rows) does not.
        error = Assert.Throws<StageLimitExceededException>(() => SequenceAdmission.Check(Stage, [.. Enumerable.Repeat(2L, 17)], holdings, limits, 1000));
        Assert.Equal($"stage {Stage} refused 1 new sequences: their 17 rows need 320 bytes of KV-cache room, it holds 800, and its budget is 1000", error.Message);
    }

    [Fact]
    public void Reservations_take_their_whole_length_and_are_refused_past_the_bounds()
    {
        var limits = new StageLimits { MaxSequences = 3 };
        var holdings = new StageHoldings(id => id == 1, Sequences: 1, KvCacheBytes: 800, KvBytesPerRow: 10);

        // A held sequence's reservation is a no-op; a new one of 10 tokens takes 16 rows of room.
        SequenceAdmission.CheckReservations(Stage, [1, 2], [500, 10], holdings, limits, kvBudgetBytes: 960);
        var error = Assert.Throws<StageLimitExceededException>(() => SequenceAdmission.CheckReservations(Stage, [2, 3], [10, 4], holdings, limits, 1000));
        Assert.Equal($"stage {Stage} refused 2 new sequences: their 14 rows need 320 bytes of KV-cache room, it holds 800, and its budget is 1000", error.Message);
        error = Assert.Throws<StageLimitExceededException>(() => SequenceAdmission.CheckReservations(Stage, [2, 3, 4], [1, 1, 1], holdings, limits, 1 << 20));
        Assert.Equal($"stage {Stage} refused 3 new sequences: it holds 1, and its limit is 3", error.Message);
    }

    [Fact]
    public void Bounds_that_are_not_positive_are_refused_by_name()
    {
        Assert.Contains("MaxQueuedDeposits", Assert.Throws<ArgumentException>(() => new StageLimits { MaxQueuedDeposits = 0 }.Validate()).Message);
        Assert.Contains("MaxQueuedDepositBytes", Assert.Throws<ArgumentException>(() => new StageLimits { MaxQueuedDepositBytes = 0 }.Validate()).Message);
        Assert.Contains("MaxSequences", Assert.Throws<ArgumentException>(() => new StageLimits { MaxSequences = 0 }.Validate()).Message);
        Assert.Contains("MaxKvCacheBytes", Assert.Throws<ArgumentException>(() => new StageLimits { MaxKvCacheBytes = -1 }.Validate()).Message);
        new StageLimits().Validate();
    }
}
