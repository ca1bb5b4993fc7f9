using FtpCluster.Compute.Inference;

namespace FtpCluster.Grains.Pipeline;

/// <summary>What a stage holds now, as its admission of new sequences sees it.</summary>
/// <param name="Holds">Whether the stage already has a KV cache for a sequence.</param>
/// <param name="Sequences">Sequences it holds caches for.</param>
/// <param name="KvCacheBytes">The device memory those caches hold.</param>
/// <param name="KvBytesPerRow">What one row of room takes in the stage's caches (in every block of the stage).</param>
internal sealed record StageHoldings(Func<long, bool> Holds, int Sequences, long KvCacheBytes, long KvBytesPerRow);

/// <summary>
/// Refuses a step that brings a stage new sequences past its <see cref="StageLimits"/>: more sequences than it may hold,
/// or KV-cache room that would take it past its budget (the room a new sequence's rows take, which runs ahead of them:
/// <see cref="LayerKvCache.RowsHeldAtMost"/>). Sequences it already holds are never refused here (their growth
/// is the coordinator's to budget).
/// </summary>
internal static class SequenceAdmission
{
    /// <param name="rowSequences">The step's rows' sequences, one per row.</param>
    /// <param name="kvBudgetBytes">The stage's KV-cache bound in bytes (<see cref="StageLimits.MaxKvCacheBytes"/>, or the silo's budget).</param>
    /// <exception cref="StageLimitExceededException">A bound would be passed; the message has the numbers.</exception>
    public static void Check(string stageKey, ReadOnlySpan<long> rowSequences, StageHoldings holdings, StageLimits limits, long kvBudgetBytes)
    {
        var newRows = new Dictionary<long, int>();
        foreach (long id in rowSequences)
            if (!holdings.Holds(id))
                newRows[id] = newRows.GetValueOrDefault(id) + 1;
        CheckNew(stageKey, newRows.Count, newRows.Values.Sum(), newRows.Values.Sum(rows => LayerKvCache.RowsHeldAtMost(rows)),
            holdings, limits, kvBudgetBytes);
    }

    /// <summary>
    /// The same bounds for sequences reserved ahead of their first rows (<see cref="IStageGrain.Reserve"/>): each new one
    /// takes the room of its whole length.
    /// </summary>
    public static void CheckReservations(string stageKey, ReadOnlySpan<long> sequenceIds, ReadOnlySpan<int> lengths,
        StageHoldings holdings, StageLimits limits, long kvBudgetBytes)
    {
        int count = 0;
        long rows = 0, room = 0;
        for (int i = 0; i < sequenceIds.Length; i++)
            if (!holdings.Holds(sequenceIds[i]))
            {
                count++;
                rows += lengths[i];
                room += LayerKvCache.FirstRoom(lengths[i]);
            }
        CheckNew(stageKey, count, rows, room, holdings, limits, kvBudgetBytes);
    }

    /// <param name="rows">The new sequences' rows (or reserved lengths); <paramref name="roomRows"/>: the rows of room they take.</param>
    private static void CheckNew(string stageKey, int sequences, long rows, long roomRows, StageHoldings holdings, StageLimits limits, long kvBudgetBytes)
    {
        if (sequences == 0) return;
        if (holdings.Sequences + sequences > limits.MaxSequences)
            throw new StageLimitExceededException(
                $"stage {stageKey} refused {sequences} new sequences: it holds {holdings.Sequences}, and its limit is {limits.MaxSequences}");
        long newBytes = roomRows * holdings.KvBytesPerRow;
        if (holdings.KvCacheBytes + newBytes > kvBudgetBytes)
            throw new StageLimitExceededException(
                $"stage {stageKey} refused {sequences} new sequences: their {rows} rows need {newBytes} bytes of KV-cache room, " +
                $"it holds {holdings.KvCacheBytes}, and its budget is {kvBudgetBytes}");
    }
}
