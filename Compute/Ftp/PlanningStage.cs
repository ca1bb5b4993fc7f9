using FtpCluster.Compute.Inference;

namespace FtpCluster.Compute.Ftp;

/// <summary>
/// The first stage of a pruned pipeline: runs its blocks over each microbatch with one-pass routing and
/// returns the plan the later stages follow. It keeps each sequence's tokens' scores as the plan saw
/// them, against which the sequence's later steps are ranked (as <see cref="TokenPruner"/> does).
/// </summary>
public sealed class PlanningStage
{
    private readonly Dictionary<long, List<float>> _scores = [];

    public PlanningStage(StageExecutor executor, SparsitySchedule schedule, ITokenRouter router, RoutingOptions options)
    {
        if (options.Mode != RoutingMode.OnePass)
            throw new ArgumentException("a pipeline's first stage plans with one-pass routing");
        schedule.RequireBlocks(executor.Stage.Config.Layers);
        Executor = executor;
        Schedule = schedule;
        Router = router;
        Options = options;
    }

    public StageExecutor Executor { get; }
    public SparsitySchedule Schedule { get; }
    public ITokenRouter Router { get; }
    public RoutingOptions Options { get; }

    /// <summary>Runs the stage over rows of any number of sequences (each contiguous, continuing its cache) and returns the plan.</summary>
    public OnePassPlan Forward(ReadOnlySpan<long> sequenceIds, ReadOnlySpan<int> positions, Span<float> hidden)
    {
        var rows = Executor.Rows(sequenceIds, positions);
        int n = rows.Length;
        var groups = new List<SequenceRows>();
        for (int start = 0, end; start < n; start = end)
        {
            for (end = start + 1; end < n && sequenceIds[end] == sequenceIds[start]; end++) { }
            var earlier = _scores.GetValueOrDefault(sequenceIds[start]) ?? [];
            if (earlier.Count != positions[start])
                throw new ArgumentException(
                    $"sequence {sequenceIds[start]} continues at position {positions[start]}, but this stage has routed {earlier.Count} of its tokens");
            groups.Add(new SequenceRows(start, end - start, [.. earlier]));
        }
        var batch = new RoutingBatch(positions.ToArray(), groups);
        var scores = new float[Executor.Stage.Slice.Blocks.Count * n];
        var plan = OnePassPlan.ForwardFirstStage(Executor.Stage, rows, hidden, batch, Schedule, Router, Options, scores);
        foreach (var group in groups)
        {
            long id = sequenceIds[group.FirstRow];
            if (!_scores.TryGetValue(id, out var list)) _scores[id] = list = [];
            foreach (float s in batch.LatestScores.Slice(group.FirstRow, group.Count)) list.Add(s);
        }
        return plan;
    }

    /// <summary>Frees a finished sequence's cache and scores.</summary>
    public bool Release(long sequenceId) => Executor.Release(sequenceId) | _scores.Remove(sequenceId);
}
