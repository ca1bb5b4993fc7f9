namespace FtpCluster.Compute.Ftp;

/// <summary>
/// One sequence's part of a step: rows [FirstRow, FirstRow + Count) of the batch, its new tokens, and the
/// latest scores of its tokens from earlier steps (already in the KV cache), which count for ranks.
/// </summary>
public readonly record struct SequenceRows(int FirstRow, int Count, float[] EarlierScores);

/// <summary>
/// The rows of one step as routers see them: each row's position and latest attention score, grouped by
/// sequence. Starts with every new row at <see cref="RouterFeatures.InitialScore"/>; after each block,
/// <see cref="Update"/> takes the scores of the rows it computed.
/// </summary>
public sealed class RoutingBatch
{
    private readonly int[] _positions;
    private readonly float[] _latest;
    private readonly SequenceRows[] _sequences;

    /// <param name="positions">Each row's position in its sequence.</param>
    /// <param name="sequences">The sequences, in row order, covering every row.</param>
    public RoutingBatch(int[] positions, IReadOnlyList<SequenceRows> sequences)
    {
        _positions = positions;
        _sequences = [.. sequences];
        int next = 0;
        foreach (var s in _sequences)
        {
            if (s.FirstRow != next || s.Count < 0)
                throw new ArgumentException($"sequences must cover the rows in order: one starts at row {s.FirstRow} with {s.Count} rows where row {next} was expected");
            next += s.Count;
        }
        if (next != positions.Length)
            throw new ArgumentException($"the sequences cover {next} rows of {positions.Length}");
        _latest = new float[positions.Length];
        Array.Fill(_latest, RouterFeatures.InitialScore);
    }

    public int Rows => _positions.Length;
    public IReadOnlyList<SequenceRows> Sequences => _sequences;
    public ReadOnlySpan<int> Positions => _positions;

    /// <summary>Each row's latest attention score: from the last block that computed it in this step.</summary>
    public ReadOnlySpan<float> LatestScores => _latest;

    /// <summary>After a block has run: the rows it computed take their scores there; a skipped row (NaN) keeps its own.</summary>
    public void Update(ReadOnlySpan<float> blockScores)
    {
        if (blockScores.Length != Rows) throw new ArgumentException($"{blockScores.Length} scores for {Rows} rows");
        for (int r = 0; r < Rows; r++)
            if (!float.IsNaN(blockScores[r])) _latest[r] = blockScores[r];
    }

    /// <summary>
    /// Every row's features for routing a block (or stage segment) of sparsity <paramref name="sparsity"/>.
    /// A row's rank is the mid-rank of its latest score among all its sequence's tokens (earlier steps' and
    /// this step's), divided by their count: (lower + ½·equal) / count, with "equal" counting itself. It lies
    /// in (0, 1), grows with the score, and ties share it (all tied: 0.5).
    /// </summary>
    public RouterFeatures[] Features(double sparsity)
    {
        var features = new RouterFeatures[Rows];
        foreach (var s in _sequences)
        {
            var all = new float[s.EarlierScores.Length + s.Count];
            s.EarlierScores.CopyTo(all, 0);
            _latest.AsSpan(s.FirstRow, s.Count).CopyTo(all.AsSpan(s.EarlierScores.Length));
            Array.Sort(all);
            for (int r = s.FirstRow; r < s.FirstRow + s.Count; r++)
            {
                float score = _latest[r];
                int lower = CountBelow(all, score), equal = CountBelow(all, MathF.BitIncrement(score)) - lower;
                features[r] = new RouterFeatures(_positions[r], score, (lower + 0.5f * equal) / all.Length, (float)sparsity);
            }
        }
        return features;
    }

    /// <summary>
    /// The sorted rows a block (or stage segment) of sparsity <paramref name="sparsity"/> computes: per
    /// sequence, <see cref="TokenSelection.Choose"/> over its rows with the quota
    /// <see cref="SparsitySchedule.KeptOf"/>(rows, sparsity).
    /// </summary>
    public int[] Choose(ITokenRouter router, ReadOnlySpan<RouterFeatures> features, double sparsity, bool pruneNewest)
    {
        if (features.Length != Rows) throw new ArgumentException($"{features.Length} feature rows for {Rows} rows");
        var keep = new bool[Rows];
        foreach (var s in _sequences)
            TokenSelection.Choose(router, features.Slice(s.FirstRow, s.Count), SparsitySchedule.KeptOf(s.Count, sparsity),
                pruneNewest, keep.AsSpan(s.FirstRow, s.Count));
        var rows = new List<int>(Rows);
        for (int r = 0; r < Rows; r++)
            if (keep[r]) rows.Add(r);
        return [.. rows];
    }

    /// <summary>How many of the sorted <paramref name="values"/> are below <paramref name="value"/>.</summary>
    private static int CountBelow(float[] values, float value)
    {
        int lo = 0, hi = values.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (values[mid] < value) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
